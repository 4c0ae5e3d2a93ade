"""A FUSE passthrough filesystem that returns EIO on demand (fusepy over libfuse2).

    python -m tests.integration.eio_fs BACKING MOUNTPOINT CONTROL

Serves BACKING at MOUNTPOINT (foreground, until unmounted). CONTROL is a file outside the mount
naming the operations that fail with EIO, comma separated: read, write, fsync (empty: none).
It is re-read on every read, write and fsync, so a test switches faults by rewriting it. Every EIO
returned is counted in CONTROL + ".count" (one line per failed call: "op path").
Writes are passed through at once (no writeback cache), so a failed write or fsync is what
SQLite sees. Files other than *-shm are opened with direct_io, so every read reaches us too
(not served from the kernel's page cache); the WAL index (*-shm) needs shared mmap, so it is
cached normally and never failed (it is rebuilt from the WAL on recovery anyway).
"""

from __future__ import annotations

import errno
import os
import sys
import threading

from fuse import FUSE, FuseOSError, Operations


class EioPassthrough(Operations):
    def __init__(self, root: str, control: str) -> None:
        self.root = os.path.realpath(root)
        self.control = control
        self._lock = threading.Lock()

    def _full(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _maybe_fail(self, op: str, path: str) -> None:
        # re-read on every call: an mtime check misses two switches within one clock tick
        try:
            with open(self.control) as fh:
                faults = {w.strip() for w in fh.read().split(",")}
        except FileNotFoundError:
            faults = set()
        if op in faults:
            with self._lock, open(self.control + ".count", "a") as fh:
                fh.write(f"{op} {path}\n")
            raise FuseOSError(errno.EIO)

    # --- metadata ----------------------------------------------------------------------
    def access(self, path, mode):
        if not os.access(self._full(path), mode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path, fh=None):
        st = os.lstat(self._full(path))
        return {k: getattr(st, k) for k in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime",
                                            "st_nlink", "st_size", "st_uid")}

    def readdir(self, path, fh):
        return [".", "..", *os.listdir(self._full(path))]

    def chmod(self, path, mode):
        os.chmod(self._full(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._full(path), uid, gid)

    def mkdir(self, path, mode):
        os.mkdir(self._full(path), mode)

    def rmdir(self, path):
        os.rmdir(self._full(path))

    def unlink(self, path):
        os.unlink(self._full(path))

    def rename(self, old, new):
        os.rename(self._full(old), self._full(new))

    def utimens(self, path, times=None):
        os.utime(self._full(path), times)

    def statfs(self, path):
        st = os.statvfs(self._full(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                            "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    # --- files -------------------------------------------------------------------------
    # raw_fi: the fuse_file_info struct is passed in, so open can ask for direct_io per file
    def _opened(self, path, fd, fi):
        fi.fh = fd
        fi.direct_io = 0 if path.endswith("-shm") else 1
        return 0

    def open(self, path, fi):
        return self._opened(path, os.open(self._full(path), fi.flags), fi)

    def create(self, path, mode, fi=None):
        return self._opened(path, os.open(self._full(path), os.O_RDWR | os.O_CREAT, mode), fi)

    def read(self, path, size, offset, fi):
        if not path.endswith("-shm"):
            self._maybe_fail("read", path)
        return os.pread(fi.fh, size, offset)

    def write(self, path, data, offset, fi):
        if not path.endswith("-shm"):
            self._maybe_fail("write", path)
        return os.pwrite(fi.fh, data, offset)

    def truncate(self, path, length, fh=None):
        self._maybe_fail("write", path)
        with open(self._full(path), "r+b") as f:
            f.truncate(length)

    def flush(self, path, fi):
        return 0

    def release(self, path, fi):
        os.close(fi.fh)

    def fsync(self, path, datasync, fi):
        self._maybe_fail("fsync", path)
        if datasync:
            os.fdatasync(fi.fh)
        else:
            os.fsync(fi.fh)

    lock = None  # no lock callback: the kernel keeps POSIX locks locally (SQLite needs them)


def main(argv: list[str]) -> None:
    backing, mountpoint, control = argv
    FUSE(EioPassthrough(backing, control), mountpoint, foreground=True, nothreads=False, raw_fi=True,
         allow_other=False, default_permissions=False)


if __name__ == "__main__":
    main(sys.argv[1:])
