"""The local-directory backend: one file per key under a root directory.

Path safety: a key is validated, its path is resolved and must stay under the real root,
and every operation then walks the path one directory at a time with `O_NOFOLLOW`
relative to the parent's descriptor, so no symbolic link inside the root is ever followed
(not even one swapped in after the resolve check).

Atomicity: a put writes `.byteor-tmp-<random>` in the key's directory, fsyncs it, renames
it over the key with `os.replace` and fsyncs the directory. A crash leaves at worst a
temporary file that is never visible as a key; `sweep_incomplete_writes` removes it.

Prefix deletes walk the prefix's folder by descriptor too (`os.scandir` on an `O_NOFOLLOW`
descriptor, one folder at a time): links found there are skipped, never followed or
removed, and the store's dot-files are left alone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import stat
import time
from collections.abc import AsyncIterable, Iterator
from contextlib import aclosing, contextmanager
from datetime import timedelta
from pathlib import Path

import anyio
import anyio.to_thread

from byteor_cloud.storage._common import (
    check_chunk_size,
    check_max_bytes,
    coalesce,
    read_all,
    single_chunk,
)
from byteor_cloud.storage.base import (
    DEFAULT_CHUNK_SIZE,
    BlobInfo,
    BlobNotFound,
    BlobStream,
    InvalidBlobKey,
    StorageError,
    StorageUnavailable,
    StoredBlob,
)
from byteor_cloud.storage.keys import (
    PROBE_DIR,
    TEMP_PREFIX,
    is_key_segment,
    new_probe_key,
    validate_key,
    validate_prefix,
)

logger = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted under a key must not hang a worker thread.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Objects can hold incident data: readable by the service's user only.
_FILE_MODE = 0o600
_DIR_MODE = 0o700
_WRITE_BLOCK = 1024 * 1024


@contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Turn an unexpected OSError into `StorageUnavailable` (full disk, permissions, …)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise StorageUnavailable(f"cannot {action}: {reason}") from exc


def _is_symlink(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _unlink_object(dir_fd: int, name: str) -> bool:
    """Unlink a file (a link itself, never its target); False if nothing or a folder is there."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except (FileNotFoundError, IsADirectoryError):
        return False
    except PermissionError:
        # Linux answers EPERM, not EISDIR, when unlinking a folder: not an object.
        if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            return False
        raise
    return True


def _remove_if_empty(dir_fd: int, name: str) -> bool:
    """Remove the folder if it is empty; False if it is not (or is gone, or is no folder)."""
    try:
        os.rmdir(name, dir_fd=dir_fd)  # never follows a link: rmdir of a link is ENOTDIR
    except OSError as exc:
        if exc.errno in {errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT, errno.ENOTDIR}:
            return False
        raise
    return True


class _PendingWrite:
    """A temporary file on its way to becoming an object; used from worker threads."""

    def __init__(self, dir_fd: int, name: str) -> None:
        self.dir_fd: int | None = dir_fd
        self.name = name
        self.temp_name = f"{TEMP_PREFIX}{secrets.token_hex(16)}"
        self.fd: int | None = os.open(self.temp_name, _TEMP_FLAGS, _FILE_MODE, dir_fd=dir_fd)
        self.hasher = hashlib.sha256()
        self.size = 0

    def _descriptors(self) -> tuple[int, int]:
        if self.fd is None or self.dir_fd is None:
            raise StorageError(f"the write of {self.name!r} is already finished")
        return self.fd, self.dir_fd

    def write(self, block: bytes) -> None:
        fd, _ = self._descriptors()
        self.hasher.update(block)
        view = memoryview(block)
        while view:
            view = view[os.write(fd, view) :]
        self.size += len(block)

    def commit(self) -> None:
        fd, dir_fd = self._descriptors()
        os.fsync(fd)
        self.fd = None
        os.close(fd)
        try:
            os.replace(self.temp_name, self.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            raise StorageError(f"cannot store {self.name!r}: a folder has that name") from exc
        # Without the directory fsync the rename itself may not survive a power loss.
        os.fsync(dir_fd)
        self.dir_fd = None
        os.close(dir_fd)

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.dir_fd is not None:
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.temp_name, dir_fd=self.dir_fd)
            finally:
                os.close(self.dir_fd)
                self.dir_fd = None


class LocalBlobStore:
    """Objects as files under `root`; the root is created on first write."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(os.path.abspath(root))

    @property
    def root(self) -> Path:
        return self._root

    @property
    def location(self) -> str:
        return f"file://{self._root}"

    # -- public interface ---------------------------------------------------------------

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> StoredBlob:
        # content_type is not kept: files carry no media type and callers record it.
        validate_key(key)
        check_max_bytes(max_bytes)
        return await self._put(key, chunks, max_bytes=max_bytes)

    async def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> StoredBlob:
        return await self.put_stream(
            key, single_chunk(data), max_bytes=max_bytes, content_type=content_type
        )

    async def open_stream(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> BlobStream:
        validate_key(key)
        check_chunk_size(chunk_size)
        return await anyio.to_thread.run_sync(self._open_for_read, key, chunk_size)

    async def read_bytes(self, key: str, *, max_bytes: int) -> bytes:
        validate_key(key)
        return await read_all(lambda: self.open_stream(key), key=key, max_bytes=max_bytes)

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except BlobNotFound:
            return False
        return True

    async def stat(self, key: str) -> BlobInfo:
        validate_key(key)
        return await anyio.to_thread.run_sync(self._stat, key)

    async def delete(self, key: str) -> None:
        validate_key(key)
        await anyio.to_thread.run_sync(self._delete, key)

    async def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        return await anyio.to_thread.run_sync(self._delete_prefix, prefix)

    async def check_writable(self) -> None:
        key = new_probe_key()
        payload = secrets.token_bytes(32)
        try:
            await self._put(key, single_chunk(payload), max_bytes=None)
            stream = await anyio.to_thread.run_sync(self._open_for_read, key, 1024)
            async with stream:
                read_back = b"".join([chunk async for chunk in stream])
            await anyio.to_thread.run_sync(self._delete, key)
        except StorageError as exc:
            reason = exc.reason if isinstance(exc, StorageUnavailable) else str(exc)
            raise StorageUnavailable(f"{self.location}: {reason}") from exc
        if read_back != payload:
            raise StorageUnavailable(f"{self.location}: the probe object read back differently")

    async def sweep_incomplete_writes(self, *, older_than: timedelta) -> int:
        cutoff = time.time() - older_than.total_seconds()
        return await anyio.to_thread.run_sync(self._sweep, cutoff)

    async def aclose(self) -> None:
        return None

    # -- path safety ----------------------------------------------------------------------

    def _check_resolved(self, key: str) -> None:
        """Refuse a key whose resolved path leaves the real root (a symlinked escape)."""
        real_root = os.path.realpath(self._root)
        resolved = os.path.realpath(os.path.join(real_root, key))
        if not resolved.startswith(real_root + os.sep):
            raise InvalidBlobKey(f"blob key {key!r} resolves outside the storage root")

    def _open_root(self, *, create: bool) -> int:
        """Descriptor of the root; a missing root raises FileNotFoundError unless `create`."""
        try:
            if create:
                os.makedirs(self._root, mode=_DIR_MODE, exist_ok=True)
            return os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StorageUnavailable("the storage root is not a directory") from exc

    def _open_parent(self, key: str, *, create: bool) -> tuple[int, str]:
        """Descriptor of the key's directory and the key's last segment.

        Each step opens one segment relative to the previous descriptor with O_NOFOLLOW.
        Raises `FileNotFoundError` when a folder is missing and `create` is false.
        """
        self._check_resolved(key)
        *folders, name = key.split("/")
        fd = self._open_root(create=create)
        for folder in folders:
            # Consumes (closes) the parent's descriptor whether it succeeds or not.
            fd = self._open_child_dir(fd, folder, key=key, create=create)
        return fd, name

    @staticmethod
    def _open_child_dir(parent_fd: int, folder: str, *, key: str, create: bool) -> int:
        try:
            try:
                child = os.open(folder, _DIR_FLAGS, dir_fd=parent_fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # a concurrent put made it first
                    os.mkdir(folder, _DIR_MODE, dir_fd=parent_fd)
                child = os.open(folder, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            # With O_DIRECTORY, Linux reports a symlink as ENOTDIR rather than ELOOP: ask.
            if exc.errno == errno.ELOOP or _is_symlink(parent_fd, folder):
                raise InvalidBlobKey(f"blob key {key!r} passes through a symbolic link") from exc
            if exc.errno == errno.ENOTDIR:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, "not a folder") from exc
                raise StorageError(f"cannot store {key!r}: {folder!r} is an object") from exc
            raise
        finally:
            os.close(parent_fd)
        return child

    # -- blocking halves of the operations (run in worker threads) -----------------------

    async def _put(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None
    ) -> StoredBlob:
        pending = await anyio.to_thread.run_sync(self._begin_write, key)
        try:
            blocks = coalesce(chunks, key=key, block_size=_WRITE_BLOCK, max_bytes=max_bytes)
            async with aclosing(blocks):
                async for block in blocks:
                    await anyio.to_thread.run_sync(self._write, pending, block)
            await anyio.to_thread.run_sync(self._commit, pending)
        except BaseException:
            # Shielded: a cancelled upload must still remove its temporary file.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pending.discard)
            raise
        return StoredBlob(key=key, size=pending.size, sha256_hex=pending.hasher.hexdigest())

    def _begin_write(self, key: str) -> _PendingWrite:
        with _os_errors(f"write {key!r}"):
            dir_fd, name = self._open_parent(key, create=True)
            try:
                return _PendingWrite(dir_fd, name)
            except BaseException:
                os.close(dir_fd)
                raise

    @staticmethod
    def _write(pending: _PendingWrite, block: bytes) -> None:
        with _os_errors(f"write {pending.name!r}"):
            pending.write(block)

    @staticmethod
    def _commit(pending: _PendingWrite) -> None:
        with _os_errors(f"write {pending.name!r}"):
            pending.commit()

    def _open_for_read(self, key: str, chunk_size: int) -> BlobStream:
        with _os_errors(f"read {key!r}"):
            try:
                dir_fd, name = self._open_parent(key, create=False)
                try:
                    fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
                finally:
                    os.close(dir_fd)
            except FileNotFoundError:
                raise BlobNotFound(key) from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise InvalidBlobKey(f"blob key {key!r} is a symbolic link") from exc
                raise
            handle = os.fdopen(fd, "rb", buffering=0)
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                handle.close()
                raise BlobNotFound(key)

        def read_chunk() -> bytes:
            with _os_errors(f"read {key!r}"):
                return handle.read(chunk_size) or b""

        return BlobStream(key=key, size=info.st_size, read_chunk=read_chunk, close=handle.close)

    def _stat(self, key: str) -> BlobInfo:
        with _os_errors(f"stat {key!r}"):
            try:
                dir_fd, name = self._open_parent(key, create=False)
                try:
                    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                finally:
                    os.close(dir_fd)
            except FileNotFoundError:
                raise BlobNotFound(key) from None
        if stat.S_ISLNK(info.st_mode):
            raise InvalidBlobKey(f"blob key {key!r} is a symbolic link")
        if not stat.S_ISREG(info.st_mode):
            raise BlobNotFound(key)
        return BlobInfo(key=key, size=info.st_size)

    def _delete(self, key: str) -> None:
        with _os_errors(f"delete {key!r}"):
            try:
                dir_fd, name = self._open_parent(key, create=False)
            except FileNotFoundError:
                return
            try:
                if _unlink_object(dir_fd, name):
                    os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _delete_prefix(self, prefix: str) -> int:
        """Purge the prefix's folder, then remove it if that left it empty."""
        folder_key = prefix.removesuffix("/")
        with _os_errors(f"delete under {prefix!r}"):
            try:
                # Validates the path to the folder: a link on the way is `InvalidBlobKey`.
                parent_fd, name = self._open_parent(folder_key, create=False)
            except FileNotFoundError:
                return 0
            try:
                try:
                    folder_fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
                except OSError as exc:
                    if exc.errno == errno.ELOOP or _is_symlink(parent_fd, name):
                        raise InvalidBlobKey(
                            f"blob key prefix {prefix!r} is a symbolic link"
                        ) from exc
                    if exc.errno in {errno.ENOENT, errno.ENOTDIR}:
                        return 0  # nothing there, or an object rather than a folder
                    raise
                try:
                    removed = self._purge_folder(folder_fd, prefix)
                finally:
                    os.close(folder_fd)
                if _remove_if_empty(parent_fd, name):
                    os.fsync(parent_fd)
                return removed
            finally:
                os.close(parent_fd)

    def _purge_folder(self, folder_fd: int, key_prefix: str) -> int:
        """Delete the objects in the open folder and below, and the folders this empties.

        Streams the folder's entries (memory stays at one entry per level, whatever the
        count); links are skipped, never followed; names no key can have, including the
        store's own dot-files (a write in progress), are left alone.
        """
        removed = 0
        changed = False
        with os.scandir(folder_fd) as entries:
            for entry in entries:
                name = entry.name
                if not is_key_segment(name):
                    continue
                if entry.is_symlink():
                    logger.warning(
                        "delete_prefix skipped %r: a symbolic link, not an object",
                        key_prefix + name,
                    )
                elif entry.is_dir(follow_symlinks=False):
                    removed += self._purge_subfolder(folder_fd, name, f"{key_prefix}{name}/")
                    changed |= _remove_if_empty(folder_fd, name)
                elif entry.is_file(follow_symlinks=False) and _unlink_object(folder_fd, name):
                    removed += 1
                    changed = True
        if changed:
            os.fsync(folder_fd)
        return removed

    def _purge_subfolder(self, parent_fd: int, name: str, key_prefix: str) -> int:
        try:
            folder_fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            # Gone, or swapped for a file or a link since it was listed: not followed.
            if exc.errno in {errno.ENOENT, errno.ENOTDIR, errno.ELOOP}:
                return 0
            raise
        try:
            return self._purge_folder(folder_fd, key_prefix)
        finally:
            os.close(folder_fd)

    def _sweep(self, cutoff: float) -> int:
        removed = 0
        if not self._root.is_dir():
            return 0
        for folder, _dirs, files in os.walk(self._root, followlinks=False):
            in_probe_dir = Path(folder).relative_to(self._root).parts[:1] == (PROBE_DIR,)
            for file in files:
                if not (in_probe_dir or file.startswith(TEMP_PREFIX)):
                    continue
                path = os.path.join(folder, file)
                try:
                    if os.lstat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    pass  # finished or swept meanwhile
        return removed
