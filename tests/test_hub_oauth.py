"""OAuth2 extensions through the whole hub: a revoked token stops working on /graphql at once."""

from __future__ import annotations

from pathlib import Path

from hub_fixture import running_hub, wait_until


def test_a_revoked_token_is_refused_on_graphql_at_once(tmp_path: Path) -> None:
    with running_hub(tmp_path, legal_persons=20, natural_persons=5) as hub:
        token = hub.token("bank")
        headers = {"Authorization": f"Bearer {token}"}
        query = {"query": "{ catalogue { family } }"}
        assert hub.http.post("/graphql", json=query, headers=headers).status_code == 200
        bank = hub.clients["bank"]
        revoked = hub.http.post("/oauth/revoke", data={"token": token}, auth=(bank["client_id"], bank["client_secret"]))
        assert revoked.status_code == 200
        refused = hub.http.post("/graphql", json=query, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
        metadata = hub.http.get("/.well-known/oauth-authorization-server").json()
        assert metadata["revocation_endpoint"].endswith("/oauth/revoke")
        assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]


def test_disabling_a_client_stops_its_tokens(tmp_path: Path) -> None:
    import subprocess
    import sys

    with running_hub(tmp_path, legal_persons=20, natural_persons=5) as hub:
        token = hub.token("bank")
        headers = {"Authorization": f"Bearer {token}"}
        query = {"query": "{ catalogue { family } }"}
        assert hub.http.post("/graphql", json=query, headers=headers).status_code == 200
        disabled = subprocess.run(
            [sys.executable, "-m", "xinlian.hub.cli", "clients", "disable", "demo-bank", "--data-dir", str(tmp_path)],
            capture_output=True, text=True,
        )
        assert disabled.returncode == 0, disabled.stdout + disabled.stderr
        # another process disabled it: seen within the refresh interval
        wait_until(lambda: hub.http.post("/graphql", json=query, headers=headers).status_code == 401, 5,
                   "the hub refusing the disabled client's token")
        refused = hub.http.post("/graphql", json=query, headers=headers)
        assert refused.status_code == 401 and "disabled" in refused.json()["error_description"]
