"""Answers cut short (a trial that exits while `kubetune run` reads its endpoint, a proxy
that resets a Prometheus query) are a missed poll or a clear error, never a crash."""
from __future__ import annotations

import socket
import threading

import pytest

from kubetune.local.scrape import scrape
from kubetune.metrics.prometheus import PrometheusClient, PrometheusError


@pytest.fixture()
def server():
    """A one-connection-at-a-time HTTP server on 127.0.0.1 that answers with `reply[0]`."""
    reply = [b""]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    done = threading.Event()

    def serve():
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(reply[0])

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/metrics", reply
    finally:
        done.set()
        t.join(5)
        sock.close()


BODY = (b"# TYPE kubetune_trial_step gauge\nkubetune_trial_step 7.0\n"
        b"# TYPE kubetune_trial_metric gauge\nkubetune_trial_metric{metric=\"val_loss\"} 0.25\n")


def test_a_whole_answer_gives_the_step_and_metrics(server):
    url, reply = server
    reply[0] = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    assert scrape(url) == (7, {"val_loss": 0.25}, None)


@pytest.mark.parametrize("cut", [b"HTTP/1.0 200 OK\r\nContent-Length: 662\r\n\r\n",  # the body never came
                                 b"HTTP/1.0 200 OK\r\nContent-Length: 500\r\n\r\n" + BODY[:30],
                                 b"HTTP/1.0 200",  # not even a status line
                                 b""])
def test_an_answer_cut_short_is_a_missed_poll(server, cut):
    url, reply = server
    reply[0] = cut
    assert scrape(url, timeout=2.0) is None


def test_prometheus_answers_cut_short_are_retried_then_reported_clearly(server):
    url, reply = server
    reply[0] = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{\"status\":"
    client = PrometheusClient(url.rsplit("/", 1)[0], retries=1, backoff=0.01)
    with pytest.raises(PrometheusError, match="unreachable"):
        client.samples("up", 0.0, 60.0)
