#!/usr/bin/python3
"""A small driver for headless Chromium over the Chrome DevTools Protocol (standard library only).

The browser is started with --remote-debugging-pipe: it reads JSON commands, each ended by
a NUL byte, on its file descriptor 3 and writes replies and events the same way on its
descriptor 4 (no WebSocket, no npm). Pages are driven through flattened target
attachment: Target.createTarget, Target.attachToTarget with flatten true, and the sessionId
it returns on every message for that page.

  from cdp import Browser, BrowserError, find_chromium
  with Browser.launch(executable=find_chromium(), width=1280, height=900, timeout=30) as b:
      page = b.new_page()
      page.goto("file:///path/to/page.html")
      page.click("#button")
      assert page.evaluate("document.querySelector('#count').textContent") == "1"

Beyond the calls above: Page.goto(url, timeout=None) and Page.evaluate(js, timeout=None)
take their own deadline; Page.command and Browser.command send any protocol command;
Page.close closes the tab; serve_directory(path) serves a folder over HTTP on 127.0.0.1
for pages that cannot work from file:// (WebAssembly fetched with fetch()). The levels of
console_messages() are the console call's ("log", "warning", "error", ...) or the Log
entry's; an uncaught exception is ("error", "Uncaught ..."), an alert ("dialog", text),
accepted at once so that it blocks nothing.

Every wait has a deadline (the launch timeout unless one is given); the browser and its
children are killed and reaped at the end (context manager, atexit, and a parent-death
signal should this process be killed outright), and its profile directory is removed
(all but that last step, which SIGKILL of this process leaves undone).
Chromium's stderr goes to a file whose tail is part of every error about the browser.

Self-check (exits 77 with "skipped: chromium not found" without a Chromium):

  /usr/bin/python3 tests/web/cdp.py --self-test [--artifacts DIR]

Protocol reference: https://chromedevtools.github.io/devtools-protocol/
"""
import argparse
import atexit
import base64
import contextlib
import ctypes
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["Browser", "BrowserError", "Page", "find_chromium", "serve_directory"]


class BrowserError(Exception):
    """Raised for a failed command, a JavaScript exception, a timeout or a dead browser."""


def find_chromium():
    """Returns the path of a Chromium or Chrome executable ($CHROMIUM first), or None."""
    env = os.environ.get("CHROMIUM")
    if env and os.access(env, os.X_OK):
        return env
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable", "chrome", "chrome-headless-shell", "headless_shell"):
        path = shutil.which(name)
        if path:
            return path
    return None


# Modifier bits of Input.dispatchKeyEvent and the key each one is pressed as.
_MODIFIERS = {
    "Alt": (1, "Alt", "AltLeft", 18),
    "Control": (2, "Control", "ControlLeft", 17),
    "Meta": (4, "Meta", "MetaLeft", 91),
    "Shift": (8, "Shift", "ShiftLeft", 16),
}

# Named keys: (key, code, windowsVirtualKeyCode, text). The values are those of a US
# keyboard as the UI Events KeyboardEvent key and code specifications name them.
_KEYS = {
    "Tab": ("Tab", "Tab", 9, ""),
    "Enter": ("Enter", "Enter", 13, "\r"),
    "Space": (" ", "Space", 32, " "),
    " ": (" ", "Space", 32, " "),
    "Escape": ("Escape", "Escape", 27, ""),
    "Backspace": ("Backspace", "Backspace", 8, ""),
    "Delete": ("Delete", "Delete", 46, ""),
    "ArrowUp": ("ArrowUp", "ArrowUp", 38, ""),
    "ArrowDown": ("ArrowDown", "ArrowDown", 40, ""),
    "ArrowLeft": ("ArrowLeft", "ArrowLeft", 37, ""),
    "ArrowRight": ("ArrowRight", "ArrowRight", 39, ""),
    "Home": ("Home", "Home", 36, ""),
    "End": ("End", "End", 35, ""),
    "PageUp": ("PageUp", "PageUp", 33, ""),
    "PageDown": ("PageDown", "PageDown", 34, ""),
}

# Punctuation of a US keyboard: character -> (code, windowsVirtualKeyCode).
_PUNCTUATION = {
    "-": ("Minus", 189), "=": ("Equal", 187), "[": ("BracketLeft", 219), "]": ("BracketRight", 221),
    "\\": ("Backslash", 220), ";": ("Semicolon", 186), "'": ("Quote", 222), ",": ("Comma", 188),
    ".": ("Period", 190), "/": ("Slash", 191), "`": ("Backquote", 192),
}
# Characters typed with Shift, by the unshifted key they share a code with.
_SHIFTED = dict(zip('~!@#$%^&*()_+{}|:"<>?', '`1234567890-=[]\\;\',./'))


def _key_definition(name):
    """Returns (key, code, windowsVirtualKeyCode, text) of a key name or one character."""
    if name in _KEYS:
        return _KEYS[name]
    if len(name) != 1:
        raise BrowserError(f"press: unknown key {name!r} (known: {', '.join(sorted(set(_KEYS) - {' '}))}, "
                           "or one character)")
    if name.isascii() and name.isalpha():
        return (name, "Key" + name.upper(), ord(name.upper()), name)
    if name.isascii() and name.isdigit():
        return (name, "Digit" + name, ord(name), name)
    base = _SHIFTED.get(name, name)
    if base.isdigit():
        return (name, "Digit" + base, ord(base), name)
    code, vk = _PUNCTUATION.get(base, ("", 0))
    return (name, code, vk, name)


def _parse_key(spec):
    """Splits "Shift+Tab" into ([modifier names], key name); "+" alone is the key "+"."""
    if spec == "+" or not spec.endswith("+") and "+" not in spec[:-1]:
        return [], spec
    parts = spec[:-2].split("+") + ["+"] if spec.endswith("++") else spec.split("+")
    mods, key = parts[:-1], parts[-1]
    for m in mods:
        if m not in _MODIFIERS:
            raise BrowserError(f"press: unknown modifier {m!r} in {spec!r} (known: {', '.join(_MODIFIERS)})")
    return mods, key


class _Pipe:
    """The two pipes to and from the browser, with framing by NUL bytes."""

    def __init__(self, write_fd, read_fd):
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buffer = bytearray()
        self.closed = False

    def send(self, message):
        data = json.dumps(message).encode() + b"\0"
        while data:
            try:
                n = os.write(self.write_fd, data)
            except OSError as e:  # EPIPE: the browser is gone
                self.closed = True
                raise BrowserError(f"cannot write to the browser: {e}") from None
            data = data[n:]

    def receive(self, deadline):
        """Returns the next message, or None at the deadline; raises BrowserError at EOF."""
        while True:
            end = self.buffer.find(b"\0")
            if end >= 0:
                raw = bytes(self.buffer[:end])
                del self.buffer[:end + 1]
                try:
                    return json.loads(raw)
                except ValueError:
                    raise BrowserError(f"the browser sent something that is not JSON: {raw[:200]!r}") from None
            if self.closed:
                raise BrowserError("the browser closed its end of the pipe")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.read_fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                self.closed = True
            self.buffer += chunk

    def close(self):
        for fd in (self.write_fd, self.read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.closed = True


def _libc_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


class Browser:
    """A headless Chromium process driven over --remote-debugging-pipe."""

    _FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
              "--disable-extensions", "--no-first-run", "--no-default-browser-check", "--mute-audio",
              "--hide-scrollbars", "--remote-debugging-pipe"]

    def __init__(self, executable, width, height, timeout, headless_flag, args):
        self.executable, self.width, self.height, self.timeout = executable, width, height, timeout
        self._next_id = 0
        self._sessions = {}  # sessionId -> Page
        self._closed = False
        self._proc = None
        self._pipe = None
        self._dir = tempfile.mkdtemp(prefix="fp8emu-cdp-")
        self._stderr_path = os.path.join(self._dir, "stderr.log")
        atexit.register(self.close)
        try:
            self._start(headless_flag, args)
        except BaseException:
            self.close()
            raise

    @classmethod
    def launch(cls, executable=None, width=1280, height=900, timeout=30, args=()):
        """Starts a headless browser (--headless, then --headless=new if that fails) and returns it.

        `timeout` (seconds) bounds the start and is the default deadline of every later wait;
        `args` are extra command-line flags.
        """
        executable = executable or find_chromium()
        if not executable:
            raise BrowserError("chromium not found (install Debian's chromium or set $CHROMIUM)")
        errors = []
        for flag in ("--headless", "--headless=new"):
            try:
                return cls(executable, width, height, timeout, flag, list(args))
            except BrowserError as e:
                errors.append(f"with {flag}: {e}")
        raise BrowserError("cannot start the browser:\n" + "\n".join(errors))

    def _start(self, headless_flag, args):
        profile = os.path.join(self._dir, "profile")
        os.makedirs(profile, exist_ok=True)
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        prctl = _libc_prctl()

        def in_child():
            # Copy the pipe ends above 9 first so that neither dup2 clobbers the other's source.
            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)  # dup2 clears close-on-exec on the new descriptor: these two survive exec
            os.dup2(w, 4)
            os.close(r)
            os.close(w)
            if prctl is not None:
                prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with this process

        cmd = [self.executable, headless_flag, *self._FLAGS, f"--user-data-dir={profile}",
               f"--window-size={self.width},{self.height}", *args, "about:blank"]
        with open(self._stderr_path, "wb") as err:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                          preexec_fn=in_child, start_new_session=True, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._pipe = _Pipe(to_child_w, from_child_r)
        self.version = self.command("Browser.getVersion")

    # --- messages -------------------------------------------------------------------------

    def stderr_tail(self, chars=2000):
        """Returns the last `chars` characters Chromium wrote on its stderr."""
        try:
            with open(self._stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - chars))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _error(self, text):
        tail = self.stderr_tail().strip()
        state = ""
        if self._proc is not None and self._proc.poll() is not None:
            state = f" (the browser exited with status {self._proc.returncode})"
        return BrowserError(f"{text}{state}" + (f"\n--- chromium stderr (tail) ---\n{tail}" if tail else ""))

    def _send(self, method, params, session_id):
        if self._closed or self._pipe is None:
            raise BrowserError(f"{method}: the browser is closed")
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        try:
            self._pipe.send(message)
        except BrowserError as e:
            raise self._error(f"{method}: {e}") from None
        return self._next_id

    def _pump(self, deadline, what):
        """Reads one message and dispatches it; returns it, or None at the deadline."""
        try:
            message = self._pipe.receive(deadline)
        except BrowserError as e:
            raise self._error(f"{what}: {e}") from None
        if message is not None and "method" in message:
            self._dispatch(message)
        return message

    def _dispatch(self, event):
        session_id = event.get("sessionId")
        if session_id:
            page = self._sessions.get(session_id)
            if page is not None:
                page._on_event(event["method"], event.get("params", {}))
            return
        if event["method"] == "Target.detachedFromTarget":
            page = self._sessions.pop(event["params"].get("sessionId"), None)
            if page is not None:
                page._detached = "the page was detached from the browser"

    def command(self, method, params=None, session_id=None, timeout=None):
        """Sends one command and returns its result; events that arrive meanwhile are dispatched."""
        sent = self._send(method, params, session_id)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            message = self._pump(deadline, method)
            if message is None:
                raise self._error(f"{method}: no reply within {self.timeout if timeout is None else timeout} s")
            if message.get("id") != sent:
                continue  # an event, or the reply to a command sent without waiting
            if "error" in message:
                err = message["error"]
                data = f" ({err['data']})" if err.get("data") else ""
                raise BrowserError(f"{method}: {err.get('message', err)}{data}")
            return message.get("result", {})

    def _post(self, method, params, session_id):
        """Sends a command without waiting for its reply (used from within event handlers)."""
        self._send(method, params, session_id)

    def _wait_until(self, condition, timeout, what):
        """Reads messages until condition() is true; BrowserError naming `what` at the deadline."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self._pump(deadline, what) is None and not condition():
                raise self._error(f"{what}: timed out after {timeout} s")

    # --- pages ----------------------------------------------------------------------------

    def new_page(self):
        """Opens a new tab of the browser's viewport size and returns its Page."""
        target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.command("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, attached)
        self._sessions[attached] = page
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            page.command(method)
        page.set_viewport(self.width, self.height)
        return page

    # --- the end --------------------------------------------------------------------------

    def close(self):
        """Closes the browser: asks it to quit, then kills its process group, reaps it, removes its profile."""
        if self._closed:
            return
        if self._proc is not None and self._proc.poll() is None and self._pipe is not None \
                and not self._pipe.closed:
            with contextlib.suppress(BrowserError, OSError):
                self._post("Browser.close", None, None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=3)
        self._closed = True
        if self._proc is not None:
            # Also the renderer and zygote processes, which share its new process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
        if self._pipe is not None:
            self._pipe.close()
        shutil.rmtree(self._dir, ignore_errors=True)
        atexit.unregister(self.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _remote_text(obj):
    """Returns the text console.log would print for one Runtime.RemoteObject."""
    if "value" in obj:
        v = obj["value"]
        return v if isinstance(v, str) else json.dumps(v)
    return obj.get("unserializableValue") or obj.get("description") or obj.get("type", "")


def _exception_text(details):
    exc = details.get("exception") or {}
    text = exc.get("description") or (json.dumps(exc["value"]) if "value" in exc else "")
    return text or details.get("text", "exception")


class Page:
    """One tab, driven through its flattened attachment (its sessionId)."""

    def __init__(self, browser, target_id, session_id):
        self.browser, self.target_id, self.session_id = browser, target_id, session_id
        self._console = []
        self._loads = 0
        self._detached = None

    def command(self, method, params=None, timeout=None):
        """Sends one protocol command to this page (its sessionId) and returns its result."""
        if self._detached:
            raise BrowserError(f"{method}: {self._detached}")
        return self.browser.command(method, params, self.session_id, timeout)

    def _on_event(self, method, params):
        if method == "Page.loadEventFired":
            self._loads += 1
        elif method == "Runtime.consoleAPICalled":
            self._console.append((params.get("type", "log"), " ".join(_remote_text(a) for a in params.get("args", []))))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self._console.append(("error", f"{details.get('text', 'Uncaught')} {_exception_text(details)}"))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("source") != "console-api":
                self._console.append((entry.get("level", "info"), entry.get("text", "")))
        elif method == "Page.javascriptDialogOpening":
            # A dialog would block every script of the page; accept it and keep its text.
            self._console.append(("dialog", params.get("message", "")))
            self.browser._post("Page.handleJavaScriptDialog", {"accept": True}, self.session_id)
        elif method == "Inspector.targetCrashed":
            self._detached = "the page crashed"
        elif method == "Inspector.detached":
            self._detached = f"the page was detached ({params.get('reason', '')})"

    def goto(self, url, timeout=None):
        """Navigates to `url` and waits for its load event."""
        timeout = self.browser.timeout if timeout is None else timeout
        loads = self._loads
        result = self.command("Page.navigate", {"url": url}, timeout)
        if result.get("errorText"):
            raise BrowserError(f"goto {url}: {result['errorText']}")
        if "loaderId" not in result:
            return  # a same-document navigation (only the fragment changed): no load event
        self.browser._wait_until(lambda: self._loads > loads or self._detached, timeout, f"goto {url}: load event")
        if self._detached:
            raise BrowserError(f"goto {url}: {self._detached}")

    def evaluate(self, js, timeout=None):
        """Returns the JSON value of the expression `js` (promises awaited); BrowserError with a JS exception's text."""
        result = self.command("Runtime.evaluate", {"expression": js, "awaitPromise": True, "returnByValue": True,
                                                   "userGesture": True}, timeout)
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluate: {_exception_text(result['exceptionDetails'])}\n  in: {js}")
        value = result.get("result", {})
        if "value" in value:
            return value["value"]
        if "unserializableValue" in value:  # NaN, Infinity, -0, bigints
            return float(value["unserializableValue"]) if value["unserializableValue"] != "-0" else -0.0
        return None

    def wait_for(self, js, timeout=10, interval=0.05):
        """Polls the expression `js` until it is truthy and returns its value.

        Exceptions while polling count as falsy (the page may be loading); the last one is
        part of the timeout error.
        """
        deadline = time.monotonic() + timeout
        last, error = None, None
        while True:
            try:
                last, error = self.evaluate(js, timeout=max(1.0, deadline - time.monotonic())), None
                if last:
                    return last
            except BrowserError as e:
                if self._detached:
                    raise
                error = e
            if time.monotonic() >= deadline:
                why = f"last error: {error}" if error else f"last value: {json.dumps(last)}"
                raise BrowserError(f"wait_for: {js!r} not true within {timeout} s ({why})")
            time.sleep(interval)

    def _element(self, selector, body, what):
        """Runs `body` (JS, with `el` the element) on the first match of `selector`."""
        result = self.evaluate(f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
                               f" if (!el) return {{missing: true}}; {body} }})()")
        if isinstance(result, dict) and result.get("missing"):
            raise BrowserError(f"{what}: no element matches {selector!r}")
        if isinstance(result, dict) and result.get("error"):
            raise BrowserError(f"{what} {selector!r}: {result['error']}")
        return result

    def click(self, selector):
        """Scrolls the element into view and clicks its centre with real mouse events."""
        box = self._element(selector, "el.scrollIntoView({block: 'center', inline: 'center'});"
                            " const r = el.getBoundingClientRect();"
                            " if (el.getClientRects().length === 0 || r.width === 0 || r.height === 0)"
                            "   return {error: 'the element has no box (hidden or empty)'};"
                            " return {x: r.left + r.width / 2, y: r.top + r.height / 2};", "click")
        x, y = box["x"], box["y"]
        self.command("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "button": "none"})
        for kind, buttons in (("mousePressed", 1), ("mouseReleased", 0)):
            self.command("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                      "buttons": buttons, "clickCount": 1})

    def focus(self, selector):
        """Focuses the element; BrowserError if it cannot take the focus."""
        self._element(selector, "el.focus(); return el === document.activeElement || el.contains(document.activeElement)"
                      " ? true : {error: 'the element cannot take the focus'};", "focus")

    def type_text(self, text):
        """Inserts `text` into the focused element as typing would (input events fire)."""
        self.command("Input.insertText", {"text": text})

    def press(self, key):
        """Presses and releases a key such as "Tab", "Shift+Tab", "Enter", "Space", "a" or "Control+A"."""
        mods, name = _parse_key(key)
        key_name, code, vk, text = _key_definition(name)
        if "Shift" in mods and len(key_name) == 1:
            key_name = text = key_name.upper()
        if {"Control", "Alt", "Meta"} & set(mods):
            text = ""  # a shortcut types nothing, and its letter is the unshifted one ("Control+A" is key "a")
            if "Shift" not in mods and len(key_name) == 1:
                key_name = key_name.lower()
        bits = 0
        for m in mods:
            bit, k, c, v = _MODIFIERS[m]
            bits |= bit
            self.command("Input.dispatchKeyEvent", {"type": "rawKeyDown", "modifiers": bits, "key": k, "code": c,
                                                    "windowsVirtualKeyCode": v, "nativeVirtualKeyCode": v})
        down = {"type": "keyDown" if text else "rawKeyDown", "modifiers": bits, "key": key_name, "code": code,
                "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}
        if text:
            down.update(text=text, unmodifiedText=text)
        if mods == ["Control"] and name.lower() == "a":
            down["commands"] = ["selectAll"]
        self.command("Input.dispatchKeyEvent", down)
        self.command("Input.dispatchKeyEvent", {"type": "keyUp", "modifiers": bits, "key": key_name, "code": code,
                                                "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk})
        for m in reversed(mods):
            bit, k, c, v = _MODIFIERS[m]
            bits &= ~bit
            self.command("Input.dispatchKeyEvent", {"type": "keyUp", "modifiers": bits, "key": k, "code": c,
                                                    "windowsVirtualKeyCode": v, "nativeVirtualKeyCode": v})

    def fill(self, selector, text):
        """Replaces the content of an input, textarea or editable element with `text` (input events fire)."""
        self.focus(selector)
        selected = self._element(selector, "if (typeof el.select === 'function') { el.select(); return true; }"
                                 " return false;", "fill")
        if not selected:
            self.press("Control+A")
        self.press("Delete")
        if text:
            self.type_text(text)
        now = self._element(selector, "return 'value' in el ? el.value : el.textContent;", "fill")
        if now != text:
            raise BrowserError(f"fill {selector!r}: the element holds {now!r} after typing {text!r}")

    def select(self, selector, value):
        """Sets a <select> to the option with `value` and dispatches 'input' and 'change'."""
        self._element(selector, f"const v = {json.dumps(value)};"
                      " if (el.tagName !== 'SELECT') return {error: 'not a <select> but a <' + el.tagName.toLowerCase() + '>'};"
                      " const values = Array.from(el.options, o => o.value);"
                      " if (!values.includes(v)) return {error: 'no option ' + JSON.stringify(v) + ' (options: '"
                      "   + values.map(x => JSON.stringify(x)).join(', ') + ')'};"
                      " el.value = v;"
                      " el.dispatchEvent(new Event('input', {bubbles: true}));"
                      " el.dispatchEvent(new Event('change', {bubbles: true}));"
                      " return true;", "select")

    def set_viewport(self, width, height, mobile=False, scale=1):
        """Sets the page's viewport (CSS pixels), mobile emulation and device scale factor."""
        self.command("Emulation.setDeviceMetricsOverride", {"width": int(width), "height": int(height),
                                                            "deviceScaleFactor": scale, "mobile": bool(mobile)})
        self.viewport = (int(width), int(height), scale)

    def screenshot(self, path, full_page=False):
        """Writes a PNG of the viewport (or of the whole content) to `path`, atomically; returns `path`."""
        params = {"format": "png"}
        if full_page:
            size = self.command("Page.getLayoutMetrics").get("cssContentSize") or {}
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": max(1, size.get("width", 1)),
                                "height": max(1, size.get("height", 1)), "scale": 1})
        data = base64.b64decode(self.command("Page.captureScreenshot", params)["data"])
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".screenshot-", suffix=".png")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def console_messages(self):
        """Returns [(level, text)] of the console messages, log entries and uncaught exceptions so far."""
        return list(self._console)

    def close(self):
        """Closes the tab."""
        with contextlib.suppress(BrowserError):
            self.browser.command("Target.closeTarget", {"targetId": self.target_id})
        self._detached = "the page is closed"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript"}

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_directory(directory):
    """Serves `directory` over HTTP on 127.0.0.1 (a free port) and yields its base URL ("http://127.0.0.1:N/").

    For pages that cannot work from file:// (WebAssembly fetched with fetch(), modules).
    """
    handler = functools.partial(_QuietHandler, directory=os.fspath(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- self-test ------------------------------------------------------------------------------

_TEST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>cdp self-test</title>
<style>body { margin: 0; font: 16px sans-serif; } #tall { height: 2000px; }</style></head>
<body>
<input id="name" type="text" value="">
<button id="inc" type="button">+1</button> <span id="count">0</span>
<input id="check" type="checkbox">
<select id="pick"><option value="a">A</option><option value="b">B</option><option value="c">C</option></select>
<span id="changed">none</span>
<div id="tall"></div>
<script>
  window.inputs = 0;
  document.getElementById('name').addEventListener('input', () => { window.inputs++; });
  document.getElementById('inc').addEventListener('click', () => {
    const c = document.getElementById('count'); c.textContent = String(Number(c.textContent) + 1);
  });
  document.getElementById('pick').addEventListener('change', e => {
    document.getElementById('changed').textContent = e.target.value;
  });
</script>
</body></html>
"""


def _png_size(path):
    """Returns (width, height) from a PNG's IHDR chunk, or None if the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def self_test(artifacts=None):
    exe = find_chromium()
    if not exe:
        print("skipped: chromium not found")
        return 77
    results = []

    def check(name, fn):
        try:
            detail = fn()
            results.append(True)
            print(f"ok   {name}" + (f": {detail}" if detail else ""))
        except Exception as e:  # one failed check must not hide the others
            results.append(False)
            print(f"FAIL {name}: {type(e).__name__}: {e}")

    def expect(actual, wanted, what):
        if actual != wanted:
            raise AssertionError(f"{what}: got {actual!r}, expected {wanted!r}")
        return f"{what} = {actual!r}"

    def framing():
        # Messages split across reads and several in one read, through a real pipe.
        r, w = os.pipe()
        pipe = _Pipe(-1, r)
        messages = [{"id": i, "result": {"text": "é\u0000" * i}} for i in range(1, 6)]
        data = b"".join(json.dumps(m).encode() + b"\0" for m in messages)
        got = []
        for start, size in ((0, 1), (1, 7), (8, len(data) // 2), (8 + len(data) // 2, len(data))):
            os.write(w, data[start:start + size])
            while (m := pipe.receive(time.monotonic() + 0.05)) is not None:
                got.append(m)
        os.close(w)
        os.close(r)
        expect(got, messages, "messages read back")
        return f"{len(got)} messages from 4 writes"
    check("pipe framing", framing)

    with tempfile.TemporaryDirectory(prefix="fp8emu-cdp-test-") as tmp:
        out = artifacts or tmp
        os.makedirs(out, exist_ok=True)
        html = os.path.join(tmp, "page.html")
        with open(html, "w") as f:
            f.write(_TEST_PAGE)
        url = "file://" + html
        started = time.monotonic()
        with Browser.launch(executable=exe, width=800, height=600, timeout=30) as b:
            print(f"browser: {b.version.get('product')} ({exe})")
            page = b.new_page()
            page.goto(url)
            q = "document.querySelector"
            check("evaluate", lambda: expect(page.evaluate("1 + 2") + len(page.evaluate(f"{q}('title') ? document.title : ''")),
                                             3 + len("cdp self-test"), "1 + 2 + length of the title"))
            check("evaluate awaits promises", lambda: expect(page.evaluate("new Promise(r => setTimeout(() => r(['x', 7]), 10))"),
                                                             ["x", 7], "the resolved value"))

            def click():
                page.click("#inc")
                page.click("#inc")
                return expect(page.evaluate(f"{q}('#count').textContent"), "2", "the counter after two clicks")
            check("click", click)

            def typing():
                page.focus("#name")
                page.type_text("héllo")
                expect(page.evaluate(f"{q}('#name').value"), "héllo", "value after type_text")
                if page.evaluate("window.inputs") < 1:
                    raise AssertionError("type_text fired no input event")
                return "value = 'héllo', input fired"
            check("focus and type_text", typing)

            def fill():
                before = page.evaluate("window.inputs")
                page.fill("#name", "fp8 e4m3")
                expect(page.evaluate(f"{q}('#name').value"), "fp8 e4m3", "value after fill")
                if page.evaluate("window.inputs") <= before:
                    raise AssertionError("fill fired no input event")
                page.fill("#name", "")
                return expect(page.evaluate(f"{q}('#name').value"), "", "value after fill('')")
            check("fill", fill)

            def keys():
                page.focus("#name")
                page.type_text("xyz")
                page.press("Control+A")
                page.press("Backspace")
                expect(page.evaluate(f"{q}('#name').value"), "", "value after Control+A, Backspace")
                page.press("a")
                page.press("End")
                page.press("B")
                return expect(page.evaluate(f"{q}('#name').value"), "aB", "value after pressing a, End, B")
            check("press characters and Control+A", keys)

            def tab():
                page.focus("#inc")
                page.press("Tab")
                expect(page.evaluate("document.activeElement.id"), "check", "focus after Tab from the button")
                page.press("Space")
                expect(page.evaluate(f"{q}('#check').checked"), True, "checkbox after Space")
                page.press("Space")
                expect(page.evaluate(f"{q}('#check').checked"), False, "checkbox after a second Space")
                page.press("Shift+Tab")
                return expect(page.evaluate("document.activeElement.id"), "inc", "focus after Shift+Tab")
            check("press Tab, Space and Shift+Tab", tab)

            def choose():
                page.select("#pick", "c")
                expect(page.evaluate(f"{q}('#pick').value"), "c", "select value")
                return expect(page.evaluate(f"{q}('#changed').textContent"), "c", "what the change handler wrote")
            check("select", choose)

            def raises(fn, needle):
                try:
                    fn()
                except BrowserError as e:
                    if needle not in str(e):
                        raise AssertionError(f"the error does not name {needle!r}: {e}")
                    return f"BrowserError: {str(e).splitlines()[0]}"
                raise AssertionError("no BrowserError")
            check("JS exception in evaluate", lambda: raises(lambda: page.evaluate("throw new Error('boom 42')"), "boom 42"))
            check("wait_for timeout", lambda: raises(lambda: page.wait_for("window.never === 1", timeout=0.5),
                                                     "window.never === 1"))
            check("wait_for success", lambda: expect(
                page.wait_for("(window.later ??= (setTimeout(() => window.done = 'yes', 100), 1), window.done)", timeout=5),
                "yes", "the value waited for"))
            check("click on a missing element", lambda: raises(lambda: page.click("#nothing"), "#nothing"))
            check("select of a missing option", lambda: raises(lambda: page.select("#pick", "z"), "no option"))
            check("unknown protocol method", lambda: raises(lambda: page.command("Page.noSuchMethod"), "Page.noSuchMethod"))

            def console():
                page.evaluate("console.error('console says', 17); setTimeout(() => { throw new Error('uncaught 99'); }, 0); 0")
                page.wait_for("new Promise(r => setTimeout(() => r(true), 50))", timeout=5)
                messages = page.console_messages()
                if ("error", "console says 17") not in messages:
                    raise AssertionError(f"console.error not captured: {messages}")
                if not any(level == "error" and "uncaught 99" in text for level, text in messages):
                    raise AssertionError(f"uncaught exception not captured: {messages}")
                return f"{len(messages)} messages: {messages}"
            check("console messages", console)

            def viewport():
                page.set_viewport(640, 480, scale=2)
                expect(page.evaluate("[window.innerWidth, window.innerHeight, window.devicePixelRatio]"),
                       [640, 480, 2], "innerWidth, innerHeight, devicePixelRatio")
                path = os.path.join(out, "viewport.png")
                page.screenshot(path)
                return expect(_png_size(path), (640 * 2, 480 * 2), "PNG size (viewport times scale)")
            check("set_viewport and screenshot", viewport)

            def full_page():
                page.set_viewport(500, 400)
                height = page.evaluate("document.documentElement.scrollHeight")
                path = os.path.join(out, "full.png")
                page.screenshot(path, full_page=True)
                size = _png_size(path)
                if size is None or size[0] != 500 or size[1] != height:
                    raise AssertionError(f"full-page PNG is {size}, expected (500, {height})")
                return f"PNG size = {size}"
            check("full-page screenshot", full_page)

            def second_page():
                other = b.new_page()
                other.goto(url)
                other.click("#inc")
                expect(other.evaluate(f"{q}('#count').textContent"), "1", "counter of a second tab")
                other.close()
                return expect(page.evaluate(f"{q}('#count').textContent"), "2", "counter of the first tab")
            check("two tabs", second_page)

            with serve_directory(tmp) as base:
                def served():
                    page.goto(base + "page.html")
                    return expect(page.evaluate("location.protocol + document.title"), "http:cdp self-test",
                                  "protocol and title")
                check("page served from a directory", served)
            proc = b._proc
        check("browser reaped", lambda: expect(proc.poll() is not None, True, "the browser has exited"))
        passed = sum(results)
        print(f"took {time.monotonic() - started:.1f} s")
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) and results else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--self-test", action="store_true", help="check the driver against a small page")
    p.add_argument("--artifacts", help="directory for the self-test's screenshots (default: a temporary one)")
    a = p.parse_args()
    if not a.self_test:
        p.print_usage(sys.stderr)
        print("cdp.py: nothing to do (use --self-test, or import the module)", file=sys.stderr)
        return 2
    # SIGTERM (ctest's timeout, kill) unwinds like Ctrl-C so that the browser is closed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return self_test(a.artifacts)
    except BrowserError as e:
        print(f"error: {e}", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
