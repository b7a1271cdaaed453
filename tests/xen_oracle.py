"""Xen's own .xl parser (libxlutil from the libxenmisc of a release in lab/releases.py), called
through ctypes.

This is the oracle the tests hold xenlab's parser to: whatever libxlutil reads from a file is, by
definition, what `xl create` will do with it.
"""

from __future__ import annotations

import ctypes as C
import errno
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any


class Unavailable(RuntimeError):
    pass


@dataclass
class XenResult:
    rc: int
    error: str
    cfg: Any


class Xen:
    def __init__(self) -> None:
        from lab.releases import RELEASES

        errors = []
        for release in RELEASES.values():  # whichever release's library this system has
            try:
                self.u = C.CDLL(release.xen_parser_library)
                self.l = C.CDLL(release.xen_light_library)
                self.release = release
                break
            except OSError as exc:
                errors.append(str(exc))
        else:
            raise Unavailable("; ".join(errors))
        self.libc = C.CDLL(None)
        self.libc.fopen.restype = C.c_void_p
        self.libc.fopen.argtypes = [C.c_char_p, C.c_char_p]
        self.libc.fflush.argtypes = [C.c_void_p]
        self.u.xlu_cfg_init.restype = C.c_void_p
        self.u.xlu_cfg_init.argtypes = [C.c_void_p, C.c_char_p]
        self.u.xlu_cfg_readfile.argtypes = [C.c_void_p, C.c_char_p]
        self.u.xlu_cfg_readdata.argtypes = [C.c_void_p, C.c_char_p, C.c_int]
        self.u.xlu_cfg_get_string.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p, C.c_int]
        self.u.xlu_cfg_get_long.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p, C.c_int]
        self.u.xlu_cfg_get_list.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p, C.c_void_p,
                                            C.c_int]
        self.u.xlu_cfg_get_listitem.restype = C.c_char_p
        self.u.xlu_cfg_get_listitem.argtypes = [C.c_void_p, C.c_int]
        self.u.xlu_cfg_destroy.argtypes = [C.c_void_p]
        self.u.xlu_disk_parse.argtypes = [C.c_void_p, C.c_int, C.c_void_p, C.c_void_p]
        self.l.libxl_device_disk_init.argtypes = [C.c_void_p]
        self.l.libxl_device_disk_to_json.restype = C.c_void_p
        self.l.libxl_device_disk_to_json.argtypes = [C.c_void_p, C.c_void_p]
        fd, self.errpath = tempfile.mkstemp(prefix="xlu-err-")
        os.close(fd)
        self.errfp = self.libc.fopen(self.errpath.encode(), b"w+")

    def _errors(self) -> str:
        self.libc.fflush(self.errfp)
        with open(self.errpath, encoding="utf-8", errors="replace") as f:
            text = f.read()
        # Truncate between calls so each result carries only its own messages.
        os.truncate(self.errpath, 0)
        self.libc.fseek = self.libc.fseek
        self.libc.rewind(C.c_void_p(self.errfp))
        return text

    def parse(self, path: str) -> XenResult:
        cfg = self.u.xlu_cfg_init(self.errfp, path.encode())
        rc = self.u.xlu_cfg_readfile(cfg, path.encode())
        return XenResult(rc, self._errors(), cfg)

    def get(self, cfg: Any, key: str) -> tuple[str, Any]:
        """('missing'|'string'|'list', value) of one key, read the way xl reads keys."""
        k = key.encode()
        lst, cnt = C.c_void_p(), C.c_int()
        rc = self.u.xlu_cfg_get_list(cfg, k, C.byref(lst), C.byref(cnt), 1)
        if rc == errno.ESRCH:
            return "missing", None
        if rc == 0:
            items = [self.u.xlu_cfg_get_listitem(lst, i) for i in range(cnt.value)]
            return "list", [None if i is None else i.decode("utf-8", "surrogateescape") for i in items]
        s = C.c_char_p()
        rc = self.u.xlu_cfg_get_string(cfg, k, C.byref(s), 1)
        assert rc == 0, (key, rc)
        return "string", (s.value or b"").decode("utf-8", "surrogateescape")

    def get_long(self, cfg: Any, key: str) -> int | None:
        n = C.c_long()
        rc = self.u.xlu_cfg_get_long(cfg, key.encode(), C.byref(n), 1)
        return n.value if rc == 0 else None

    def disk(self, spec: str) -> tuple[dict[str, Any] | None, str]:
        cfg = self.u.xlu_cfg_init(self.errfp, b"disk")
        buf = C.create_string_buffer(4096)
        self.l.libxl_device_disk_init(buf)
        arr = (C.c_char_p * 1)(spec.encode())
        rc = self.u.xlu_disk_parse(cfg, 1, arr, buf)
        err = self._errors()
        self.u.xlu_cfg_destroy(cfg)
        if rc:
            return None, err
        return json.loads(C.string_at(self.l.libxl_device_disk_to_json(None, buf)).decode()), err

    def destroy(self, cfg: Any) -> None:
        self.u.xlu_cfg_destroy(cfg)
