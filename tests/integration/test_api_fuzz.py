"""Random JSON into the node endpoints: always a 2xx or a 4xx with a JSON detail, never a 500."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
node_like = st.fixed_dictionaries({}, optional={
    "hostname": st.one_of(st.text(max_size=70), json_values), "mac": st.one_of(st.text(max_size=20), json_values),
    "ip": st.one_of(st.text(max_size=16), json_values), "tags": json_values, "profile": json_values,
    "role": json_values, "interfaces": json_values, "bmc": json_values, "facts": json_values, "state": json_values,
})


def test_never_a_500(client, auth, db_url) -> None:
    h = auth("admin")

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.one_of(node_like, json_values))
    def check(body: object) -> None:
        for method, path in (("POST", "/api/v1/nodes"), ("PATCH", "/api/v1/nodes/fuzz0"),
                             ("POST", "/api/v1/profiles"), ("POST", "/api/v1/images")):
            r = client.request(method, path, json=body, headers=h)
            assert r.status_code < 500, (method, path, body, r.text)
            assert "detail" in r.json() or r.status_code < 300

    client.post("/api/v1/nodes", json={"hostname": "fuzz0", "mac": "02:00:00:00:ff:01"}, headers=h)
    check()
