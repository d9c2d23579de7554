"""The test cluster answers optimistic-concurrency patches as an API server does."""
from .conftest import NS, create, study_manifest


async def test_a_json_patch_with_a_stale_resource_version_is_refused_with_422(cluster):
    await create(cluster, study_manifest())
    url = f"/apis/kubetune.io/v1alpha1/namespaces/{NS}/studies/demo"
    old = (await (await cluster.get(url)).json())["metadata"]["resourceVersion"]
    headers = {"Content-Type": "application/json-patch+json"}
    ok = await cluster.patch(url, headers=headers, json=[
        {"op": "test", "path": "/metadata/resourceVersion", "value": old},
        {"op": "add", "path": "/metadata/finalizers", "value": ["kubetune.io/x"]},
    ])
    assert ok.status == 200, await ok.text()
    new = (await ok.json())["metadata"]["resourceVersion"]
    assert new != old  # a JSON patch is a write: the version moves on
    # kopf's next patch from a stale view: refused as Invalid, so kopf retries on its next cycle
    stale = await cluster.patch(url, headers=headers, json=[
        {"op": "test", "path": "/metadata/resourceVersion", "value": old},
        {"op": "remove", "path": "/metadata/finalizers"},
    ])
    assert stale.status == 422, await stale.text()
    body = (await (await cluster.get(url)).json())
    assert body["metadata"]["finalizers"] == ["kubetune.io/x"] and body["metadata"]["resourceVersion"] == new
