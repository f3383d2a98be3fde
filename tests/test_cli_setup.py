"""init, jobs show, snapshots show: what an operator runs first and reads afterwards."""

from __future__ import annotations

import stat
from pathlib import Path

from agent.store.keys import RepositoryKey
from tests.agent_helpers import agent_for, cli, simulated_tenant


def test_init_creates_config_key_repository_and_database(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "agent.toml"
    data = tmp_path / "data"
    result = cli("init", "--config", str(config), "--data-dir", str(data))
    assert result.code == 0, result.err
    text = config.read_text()
    assert f'data_dir = "{data.as_posix()}"' in text
    assert "client_secret" in text  # every option is shown, commented
    key = data / "keys" / "repository.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (data / "repository" / "format").exists()
    assert (data / "agent.db").exists()

    # Running it again keeps the key (overwriting it would orphan every backup).
    before = key.read_text()
    again = cli("init", "--config", str(config))
    assert again.code == 0, again.err
    assert key.read_text() == before
    assert "exists" in again.out

    # A key that does not open the repository is refused, not replaced.
    key.write_text(RepositoryKey.generate().to_text())
    wrong = cli("init", "--config", str(config))
    assert wrong.code == 5
    assert "Traceback" not in wrong.out + wrong.err


def test_job_and_snapshot_views_carry_per_kind_counts(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=60, groups=10) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        assert cli("backup", "--tenant", "contoso", "--config", str(config)).code == 0
        job = cli("jobs", "show", "1", "--config", str(config), "--json").json()
        kinds = {k["kind"]: k for k in job["job"]["kinds"]}
        assert kinds["user"]["succeeded"] == 60 and kinds["user"]["failed"] == 0
        assert kinds["group"]["succeeded"] == 10
        assert any("started" in e["message"] for e in job["events"])
        snap_id = job["job"]["snapshot_id"]
        snap = cli("snapshots", "show", str(snap_id), "--config", str(config), "--json").json()
        present = {k["kind"]: k["objects"] for k in snap["kinds"]}
        assert {k: present[k] for k in ("user", "group", "groupMember", "groupOwner")} == {
            "user": 60,
            "group": 10,
            "groupMember": 10,
            "groupOwner": 10,
        }
        assert set(present) == {k["kind"] for k in job["job"]["kinds"]}  # every kind shown
        human = cli("jobs", "show", "1", "--config", str(config))
        assert human.code == 0 and "succeeded" in human.out
        missing = cli("snapshots", "show", "999", "--config", str(config))
        assert missing.code != 0 and "999" in missing.err
        rt.close()
