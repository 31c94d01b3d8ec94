# SPDX-License-Identifier: GPL-2.0
"""A QMP client: commands, and the events seen meanwhile.
"""

import json
import socket
import time

class QMP:
    """Minimal QMP client: commands and the events seen meanwhile."""

    def __init__(self, path, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rw")
        self.events = []
        json.loads(self.file.readline())        # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise RuntimeError("QMP connection closed")
            resp = json.loads(line)
            if "event" in resp:
                self.events.append(resp)
                continue
            if "error" in resp:
                raise RuntimeError(f"QMP {name}: {resp['error']['desc']}")
            return resp["return"]

    def wait_event(self, name, timeout, match=None):
        deadline = time.time() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and (match is None or match(ev)):
                    self.events.remove(ev)
                    return ev
            left = deadline - time.time()
            if left <= 0:
                raise RuntimeError(f"no QMP event {name} within {timeout} s")
            self.sock.settimeout(left)
            try:
                line = self.file.readline()
            except (socket.timeout, TimeoutError):
                continue
            finally:
                self.sock.settimeout(None)
            if not line:
                raise RuntimeError("QMP connection closed")
            resp = json.loads(line)
            if "event" in resp:
                self.events.append(resp)

    def close(self):
        self.sock.close()
