"""Restoring users through the CLI against a simulated tenant: a deleted user whose name
another account took meanwhile comes back under a new name, and the report says so."""

from __future__ import annotations

from pathlib import Path

from agent.graph import GraphClient
from tests.agent_helpers import agent_for, backup, restore
from tests.test_restore_e2e import cloud, make_env
from tests.test_sim_support import session, token


def test_a_user_whose_name_was_taken_comes_back_under_a_new_one(tmp_path: Path) -> None:
    with make_env(tmp_path, ["Global Administrator"]) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        d = sim.tenants["contoso"].directory
        snap = backup(str(config))
        user = cloud(d)[0]
        upn = user["userPrincipalName"]
        d.delete_user(user["id"])
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        newcomer = g.post("/users", {
            "accountEnabled": True, "displayName": "Newcomer", "mailNickname": "newcomer",
            "userPrincipalName": upn,
            "passwordProfile": {"password": "Tmp-9fQ2-xL7w!", "forceChangePasswordNextSignIn": True},
        })  # fmt: skip

        out = restore(str(config), snap, "--kind", "user", "--id", user["id"], "--yes",
                      "--json").json()  # fmt: skip

        back = d.get(user["id"])
        local, _, domain = upn.partition("@")
        assert back is not None and back["userPrincipalName"] == f"{local}.restored@{domain}"
        assert back["displayName"] == user["displayName"]  # the rest is the snapshot's
        assert d.get(newcomer["id"])["userPrincipalName"] == upn  # the newcomer keeps it
        [result] = out["results"]
        assert result["action"] == "undelete" and result["status"] == "partial"
        why = result["not_restored"]["userPrincipalName"]
        assert f"{local}.restored@{domain}" in why and upn in why
        rt.close()
