"""What only the local-directory backend has: a root on disk, links, atomic renames."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from byteor_cloud.storage import (
    BlobNotFound,
    InvalidBlobKey,
    LocalBlobStore,
    StorageError,
    StorageUnavailable,
)

if TYPE_CHECKING:
    from .conftest import LocalHarness

pytestmark = pytest.mark.anyio

TEMP_PREFIX = ".byteor-tmp-"


def temp_files(root: Path) -> list[Path]:
    return [path for path in root.rglob(f"{TEMP_PREFIX}*") if path.is_file()]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret").write_bytes(b"not yours")
    return folder


async def test_the_root_is_created_on_first_write_only(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "objects"
    store = LocalBlobStore(root)

    assert not await store.exists("k")
    await store.delete("k")
    assert not root.exists()

    await store.put_bytes("a/b/k", b"x")
    assert (root / "a" / "b" / "k").read_bytes() == b"x"


async def test_objects_are_private_to_the_service_user(local_harness: LocalHarness) -> None:
    await local_harness.store.put_bytes("a/k", b"x")

    assert stat.S_IMODE((local_harness.root / "a" / "k").stat().st_mode) == 0o600
    assert stat.S_IMODE((local_harness.root / "a").stat().st_mode) == 0o700


async def test_a_symlinked_folder_out_of_the_root_is_not_followed(
    local_harness: LocalHarness, outside: Path
) -> None:
    store = local_harness.store
    local_harness.root.mkdir()
    (local_harness.root / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(InvalidBlobKey):
        await store.put_bytes("link/planted", b"x")
    with pytest.raises(InvalidBlobKey):
        await store.read_bytes("link/secret", max_bytes=100)
    with pytest.raises(InvalidBlobKey):
        await store.open_stream("link/secret")
    with pytest.raises(InvalidBlobKey):
        await store.stat("link/secret")
    with pytest.raises(InvalidBlobKey):
        await store.exists("link/secret")
    with pytest.raises(InvalidBlobKey):
        await store.delete("link/secret")

    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"not yours"


async def test_a_symlinked_key_out_of_the_root_is_not_followed(
    local_harness: LocalHarness, outside: Path
) -> None:
    store = local_harness.store
    local_harness.root.mkdir()
    (local_harness.root / "leak").symlink_to(outside / "secret")

    with pytest.raises(InvalidBlobKey):
        await store.read_bytes("leak", max_bytes=100)
    with pytest.raises(InvalidBlobKey):
        await store.put_bytes("leak", b"overwritten")

    assert (outside / "secret").read_bytes() == b"not yours"


async def test_a_symlink_inside_the_root_is_not_followed_either(
    local_harness: LocalHarness,
) -> None:
    # The resolved path stays in the root, so only the O_NOFOLLOW walk can refuse it:
    # this is what also stops a link swapped in after the resolve check.
    store = local_harness.store
    await store.put_bytes("real/k", b"x")
    (local_harness.root / "alias").symlink_to(local_harness.root / "real")
    (local_harness.root / "real" / "also").symlink_to(local_harness.root / "real" / "k")

    with pytest.raises(InvalidBlobKey):
        await store.put_bytes("alias/new", b"y")
    with pytest.raises(InvalidBlobKey):
        await store.read_bytes("alias/k", max_bytes=10)
    with pytest.raises(InvalidBlobKey):
        await store.read_bytes("real/also", max_bytes=10)
    with pytest.raises(InvalidBlobKey):
        await store.stat("real/also")
    assert not (local_harness.root / "real" / "new").exists()


async def test_a_root_that_is_a_file_makes_check_writable_fail_clearly(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    root.write_bytes(b"")
    store = LocalBlobStore(root)

    with pytest.raises(StorageUnavailable) as caught:
        await store.check_writable()

    assert caught.value.reason == f"file://{root}: the storage root is not a directory"
    with pytest.raises(StorageUnavailable):
        await store.put_bytes("k", b"x")


async def test_a_write_is_invisible_until_complete(local_harness: LocalHarness) -> None:
    store, root = local_harness.store, local_harness.root
    first_block_written = anyio.Event()
    finish = anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"a" * (2 * 1024 * 1024)  # one whole write block, written at once
        first_block_written.set()
        await finish.wait()
        yield b"b"

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.put_stream, "k", slow())
        await first_block_written.wait()
        assert not await store.exists("k")
        [temp] = temp_files(root)
        assert temp.parent == root
        assert temp.stat().st_size == 2 * 1024 * 1024
        finish.set()

    assert (await store.stat("k")).size == 2 * 1024 * 1024 + 1
    assert temp_files(root) == []


CRASHING_WRITER = """
import sys
import anyio
from byteor_cloud.storage import LocalBlobStore

async def chunks():
    yield b"x" * (2 * 1024 * 1024)
    print("written", flush=True)
    await anyio.sleep(3600)
    yield b""

anyio.run(LocalBlobStore(sys.argv[1]).put_stream, "crash/k", chunks())
"""


def test_a_crash_mid_write_leaves_only_a_sweepable_temp_file(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(root)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == b"written\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        if writer.stdout is not None:
            writer.stdout.close()

    store = LocalBlobStore(root)
    assert not anyio.run(store.exists, "crash/k")
    [temp] = temp_files(root)
    assert temp.stat().st_size == 2 * 1024 * 1024

    assert anyio.run(lambda: store.sweep_incomplete_writes(older_than=timedelta(hours=1))) == 0
    assert temp.exists()  # a write may still be running: only old temp files go
    assert anyio.run(lambda: store.sweep_incomplete_writes(older_than=timedelta(0))) == 1
    assert temp_files(root) == []


async def test_sweep_clears_old_temp_and_probe_files_only(local_harness: LocalHarness) -> None:
    store, root = local_harness.store, local_harness.root
    await store.put_bytes("a/k", b"keep")
    old = time.time() - 7200
    for leftover in (root / "a" / f"{TEMP_PREFIX}old", root / ".byteor-probe" / "p"):
        leftover.parent.mkdir(exist_ok=True)
        leftover.write_bytes(b"x")
        os.utime(leftover, (old, old))
    fresh = root / "a" / f"{TEMP_PREFIX}fresh"
    fresh.write_bytes(b"x")

    removed = await store.sweep_incomplete_writes(older_than=timedelta(hours=1))

    assert removed == 2
    assert local_harness.leftovers() == ["a/.byteor-tmp-fresh", "a/k"]


async def test_a_key_cannot_be_both_an_object_and_a_folder(local_harness: LocalHarness) -> None:
    store = local_harness.store
    await store.put_bytes("a/b", b"x")

    with pytest.raises(StorageError):
        await store.put_bytes("a/b/c", b"y")
    with pytest.raises(StorageError):
        await store.put_bytes("a", b"y")
    with pytest.raises(BlobNotFound):
        await store.stat("a")
    with pytest.raises(BlobNotFound):
        await store.open_stream("a/b/c")
    await store.delete("a")

    assert local_harness.leftovers() == ["a/b"]


async def test_a_fifo_under_a_key_is_not_a_blob_and_does_not_hang(
    local_harness: LocalHarness,
) -> None:
    local_harness.root.mkdir()
    os.mkfifo(local_harness.root / "pipe")

    with anyio.fail_after(5):
        with pytest.raises(BlobNotFound):
            await local_harness.store.open_stream("pipe")
        assert not await local_harness.store.exists("pipe")


# -- delete_prefix ------------------------------------------------------------------------


async def test_delete_prefix_does_not_follow_links_under_the_prefix(
    local_harness: LocalHarness, outside: Path
) -> None:
    store, root = local_harness.store, local_harness.root
    await store.put_bytes("orgs/A/p/k", b"x")
    await store.put_bytes("orgs/A/q/k", b"x")
    await store.put_bytes("orgs/B/k", b"other tenant")
    (root / "orgs" / "A" / "out").symlink_to(outside, target_is_directory=True)
    (root / "orgs" / "A" / "p" / "leak").symlink_to(outside / "secret")
    (root / "orgs" / "A" / "q" / "alias").symlink_to(root / "orgs" / "B", target_is_directory=True)

    removed = await store.delete_prefix("orgs/A/")

    assert removed == 2  # the links are not objects: skipped, neither followed nor removed
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"not yours"
    assert await store.read_bytes("orgs/B/k", max_bytes=100) == b"other tenant"
    assert (root / "orgs" / "A" / "out").is_symlink()
    assert (root / "orgs" / "A" / "p" / "leak").is_symlink()
    assert os.listdir(root / "orgs" / "A" / "q") == ["alias"]  # so that folder stays
    # (leftovers() lists the file link, not the two links to folders checked above.)
    assert local_harness.leftovers() == ["orgs/A/p/leak", "orgs/B/k"]
    assert await store.delete_prefix("orgs/A/") == 0


async def test_delete_prefix_refuses_a_linked_prefix_or_path(
    local_harness: LocalHarness, outside: Path
) -> None:
    store, root = local_harness.store, local_harness.root
    await store.put_bytes("orgs/B/k", b"x")
    await store.put_bytes("real/A/k", b"x")
    (root / "orgs" / "out").symlink_to(outside, target_is_directory=True)
    (root / "orgs" / "alias").symlink_to(root / "orgs" / "B", target_is_directory=True)
    (root / "linked").symlink_to(root / "real", target_is_directory=True)

    for prefix in ("orgs/out/", "orgs/alias/", "linked/A/", "linked/"):
        with pytest.raises(InvalidBlobKey):
            await store.delete_prefix(prefix)

    assert sorted(os.listdir(outside)) == ["secret"]
    assert local_harness.leftovers() == ["orgs/B/k", "real/A/k"]  # the links are folders


async def test_delete_prefix_removes_emptied_folders_only_under_the_prefix(
    local_harness: LocalHarness,
) -> None:
    store, root = local_harness.store, local_harness.root
    await store.put_bytes("orgs/A/projects/p1/environments/e1/k", b"x")
    await store.put_bytes("orgs/A/projects/p2/k", b"x")
    (root / "orgs" / "A" / "projects" / "p3").mkdir()  # already empty

    assert await store.delete_prefix("orgs/A/") == 2

    assert not (root / "orgs" / "A").exists()
    assert (root / "orgs").is_dir()  # above the prefix: left for other tenants' puts
    await store.put_bytes("orgs/A/projects/p1/k", b"again")  # the tenant's key space still works
    assert local_harness.leftovers() == ["orgs/A/projects/p1/k"]


async def test_delete_prefix_leaves_reserved_and_foreign_files(
    local_harness: LocalHarness,
) -> None:
    store, root = local_harness.store, local_harness.root
    await store.put_bytes("orgs/A/p/k", b"x")
    await store.put_bytes("orgs/A/q/k", b"x")
    folder = root / "orgs" / "A" / "p"
    (folder / f"{TEMP_PREFIX}in-progress").write_bytes(b"a write still running")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "k").write_bytes(b"x")
    (folder / "not a key").write_bytes(b"x")
    os.mkfifo(folder / "pipe")

    with anyio.fail_after(5):
        assert await store.delete_prefix("orgs/A/") == 2

    assert local_harness.leftovers() == [
        f"orgs/A/p/{TEMP_PREFIX}in-progress",
        "orgs/A/p/.hidden/k",
        "orgs/A/p/not a key",
        "orgs/A/p/pipe",
    ]
    assert not (root / "orgs" / "A" / "q").exists()
    # The sweep still owns temp files, and clears this one once it is old.
    assert await store.sweep_incomplete_writes(older_than=timedelta(0)) == 1


async def test_delete_prefix_over_an_object_deletes_nothing(local_harness: LocalHarness) -> None:
    await local_harness.store.put_bytes("orgs/A", b"x")

    assert await local_harness.store.delete_prefix("orgs/A/") == 0
    assert local_harness.leftovers() == ["orgs/A"]
