"""Issue 13 (clone anywhere): the "can the postgres OS user reach this path" decision, and where
`PostgresServer` keeps a cluster that lives outside its home (no server is started here)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import deploy.local.postgres as pg
from connectors.settings import StackSettings
from deploy.local.postgres import PostgresServer, can_search

UID, GID = 54321, 54322  # nobody's ids on this machine
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A fresh dir under /tmp that anyone may traverse (mode 0755)."""
    path = Path(tempfile.mkdtemp())
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir() and not sub.is_symlink():
            sub.chmod(0o755)
    shutil.rmtree(path)


def test_world_searchable_chain_is_reachable(open_dir: Path):
    leaf = open_dir / "a" / "b"
    leaf.mkdir(parents=True)
    assert can_search(leaf, UID, [GID])


def test_a_0700_ancestor_blocks_other_users(open_dir: Path):
    leaf = open_dir / "a" / "b"
    leaf.mkdir(parents=True)
    (open_dir / "a").chmod(0o700)
    assert not can_search(leaf, UID, [GID])
    assert not can_search(open_dir / "a", UID, [GID])
    assert can_search(open_dir, UID, [GID])
    assert can_search(leaf, 0, [0])  # root passes any mode


def test_mkdtemp_dir_is_not_reachable():
    path = Path(tempfile.mkdtemp())
    try:
        assert not can_search(path, UID, [GID])
    finally:
        path.rmdir()


def test_missing_path_is_not_reachable(open_dir: Path):
    assert not can_search(open_dir / "nope", UID, [GID])


@root_only
def test_owner_and_group_bits_count(open_dir: Path):
    mine, groups = open_dir / "mine", open_dir / "group"
    for path in (mine, groups):
        path.mkdir()
    os.chown(mine, UID, 0)
    mine.chmod(0o700)
    os.chown(groups, 0, GID)
    groups.chmod(0o710)
    assert can_search(mine, UID, [])
    assert not can_search(mine, UID + 1, [GID])
    assert can_search(groups, UID, [GID])
    assert not can_search(groups, UID, [GID + 1])


@root_only
@pytest.mark.skipif(pg.outside_root() is None, reason="no postgres OS user")
def test_home_reachable_follows_the_homes_mode(open_dir: Path):
    server = PostgresServer(StackSettings(home=open_dir / "home"))
    server.settings.logs_dir.mkdir(parents=True)
    assert server.home_reachable()
    open_dir.chmod(0o700)
    assert not server.home_reachable()


@pytest.fixture
def outside(open_dir: Path, monkeypatch) -> Path:
    root = open_dir / "pg-home" / pg.OUTSIDE_DIR
    monkeypatch.setattr(pg, "outside_root", lambda: root)
    return root


def test_layout_of_a_home_with_its_cluster_outside(open_dir: Path, outside: Path):
    home = open_dir / "home"
    home.mkdir()
    target = outside / "0123456789abcdef"
    (target / "data").mkdir(parents=True)
    (target / "run").mkdir()
    (home / "postgres").symlink_to(target)
    server = PostgresServer(StackSettings(home=home))
    assert server.outside and server.base == target
    assert server.data_dir == target / "data"
    assert server.socket_dir == target / "run"
    assert server.log_file == target / "postgres.log"
    assert server.pids() == []

    assert server.remove_data() == [target]
    assert not target.exists() and not os.path.lexists(home / "postgres")


def test_layout_under_the_home_is_unchanged(open_dir: Path, outside: Path):
    home = open_dir / "home"
    settings = StackSettings(home=home)
    server = PostgresServer(settings)
    assert not server.outside and server.base == home / "postgres"
    assert server.data_dir == home / "postgres" / "data"
    assert server.socket_dir == settings.pg_socket_dir == home / "postgres" / "run"
    assert server.log_file == home / "logs" / "postgres.log"

    (home / "postgres" / "data").mkdir(parents=True)
    (home / "postgres" / "run").mkdir()
    assert server.remove_data() == [home / "postgres" / "data", home / "postgres" / "run"]
    assert (home / "postgres").is_dir()


def test_a_link_of_the_users_own_is_used_as_it_is(open_dir: Path, outside: Path):
    home = open_dir / "home"
    home.mkdir()
    elsewhere = open_dir / "bigdisk"
    elsewhere.mkdir()
    (home / "postgres").symlink_to(elsewhere)
    server = PostgresServer(StackSettings(home=home))
    assert not server.outside
    assert server.data_dir == home / "postgres" / "data"


def test_only_clusters_no_home_links_to_any_more_are_orphans(open_dir: Path, outside: Path):
    home = open_dir / "home"
    home.mkdir()
    linked, orphan, unfinished = (outside / name for name in ("a" * 16, "b" * 16, "c" * 16))
    for path in (linked, orphan, unfinished):
        (path / "data").mkdir(parents=True)
    (linked / "home").write_text(f"{home}\n")
    (home / "postgres").symlink_to(linked)
    (orphan / "home").write_text(f"{open_dir / 'deleted-home'}\n")
    assert pg._remove_orphans(outside) == [orphan]
    assert linked.is_dir() and unfinished.is_dir() and not orphan.exists()
    assert pg._remove_orphans(open_dir / "no-such-root") == []
