"""The report and the live dashboard in a real browser (Debian's chromium, headless, over
the DevTools protocol): every plot is drawn, no JavaScript error reaches the console, the
report fetches nothing, the trial table sorts and filters, and a trial the run writes
appears on the live page without a reload."""
from __future__ import annotations

import pytest

from kubetune.report.cli import load_local
from kubetune.report.html import figure_keys, render_report
from tests.local.test_dashboard import Server, make_run, make_trial

from .cdp import Browser, chromium

pytestmark = pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (apt-get install chromium)")

RENDERED = """(() => {
  const ps = [...document.querySelectorAll('.plot')];
  const drawn = ps.filter(p => p.classList.contains('js-plotly-plot') && p.querySelector('.main-svg')
                               && (p._fullData || []).length > 0);
  return ps.length && drawn.length === ps.length ? drawn.map(p => p.dataset.plot) : null;
})()"""
ROWS = "document.querySelectorAll('#trials tbody tr').length"
SHOWN = "[...document.querySelectorAll('#trials tbody tr')].filter(r => r.style.display !== 'none').length"


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def test_the_report_draws_every_plot_offline_without_errors(browser, tmp_path):
    make_run(tmp_path / "r", n=9)
    html = render_report(*load_local(tmp_path / "r"))
    (tmp_path / "report.html").write_text(html)
    expected = figure_keys(html)
    assert {"history", "importance", "slice-learning_rate", "slice-momentum", "contour", "parallel",
            "curves"} <= set(expected)
    browser.errors.clear()
    browser.requests.clear()
    browser.goto(f"file://{tmp_path}/report.html")
    assert browser.wait_for(RENDERED) == expected
    # hover text names the trial: the history plot's points carry each trial's name and value
    texts = browser.eval("document.getElementById('plot-history')._fullData[0].text.join('|')")
    assert "r-0" in texts and "learning_rate = " in texts and "val_loss = " in texts
    assert browser.eval("document.getElementById('plot-slice-learning_rate')._fullLayout.xaxis.type") == "log"
    # the table sorts by a column and filters by phase
    assert browser.eval(ROWS) == 9
    browser.eval("document.querySelectorAll('#trials th')[3].click()")  # val_loss, ascending
    values = browser.eval("[...document.querySelectorAll('#trials tbody tr')].map(r => parseFloat(r.cells[3].dataset.v))")
    assert values == sorted(values)
    browser.eval("const s = document.getElementById('phase'); s.value = 'EarlyStopped'; s.dispatchEvent(new Event('change'))")
    assert browser.eval(SHOWN) == 3
    browser.pump(1.0)
    assert browser.errors == []
    outside = [u for u in browser.requests if not u.startswith(("file:", "data:", "about:", "blob:"))]
    assert outside == [], outside


def test_the_dashboard_shows_a_new_trial_live(browser, tmp_path):
    store = make_run(tmp_path / "runs" / "r", n=7)
    srv = Server(tmp_path / "runs")
    try:
        browser.errors.clear()
        browser.goto(srv.url("/"))
        assert browser.wait_for("document.querySelector(\"a[href='/round/r']\") !== null")
        browser.goto(srv.url("/round/r"))
        assert browser.wait_for(RENDERED)
        assert browser.eval(ROWS) == 7
        assert browser.eval("window.ktMarker = 1")  # gone if the page reloaded instead of updating
        store.save_trial(make_trial(7))
        browser.wait_for(f"{ROWS} === 8 && document.body.textContent.includes('r-7')", timeout=20)
        assert browser.eval("window.ktMarker") == 1
        assert browser.wait_for(RENDERED)
        browser.pump(1.0)
        assert browser.errors == []
    finally:
        srv.stop()
