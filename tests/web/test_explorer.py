#!/usr/bin/python3
"""The browser explorer (web/explorer/) in headless Chromium shows what `fp8emu explain` prints.

Opens DIR/index.html by file:// URL (the page as it is installed, with the WebAssembly module
fp8emu_explorer.js beside it) and compares what the page displays (textContent of its
elements, see the comment at the top of explorer.js) with the command-line tool run as a
separate process: `fp8emu explain ... --json` for every field, the plain text of `fp8emu
explain` for the command-line section, `fp8emu explain F --code C` for bit clicks and table
rows, `fp8emu table F` for the code table and (counted here with math.frexp) the density per
binade. States are opened through the URL hash, and some by real typing, clicks and keys.

  /usr/bin/python3 tests/web/test_explorer.py --explorer DIR --tool PATH/fp8emu --artifacts DIR

Prints one line per failed check, the number of checks of each part, and a summary
"N passed, M failed"; exits 1 on a failure,
77 ("skipped: ...") without Chromium or without the explorer directory.
"""
import argparse
import csv
import io
import json
import math
import os
import shlex
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, BrowserError, find_chromium  # noqa: E402

NONE = "\u2014"  # what the page shows where fp8emu's JSON has null

FORMATS = ["e4m3fn", "e5m2", "bfloat16", "float16", "e2m1fn", "e3m2fn", "e8m0fnu", "e4m3fnuz",
           "binary8p3se", "e3m4", "e5m2:bias=16"]
VALUES = ["3.3", "-0.1", "1e6", "1e-9", "0x1p-7", "1.0625", "448", "480", "-inf", "nan", "0", "-0"]


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def equal(self, what, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}: page {got!r}, expected {want!r}")

    def true(self, what, ok, detail=""):
        self.equal(what + (f" ({detail})" if detail else ""), bool(ok), True)


class Tool:
    def __init__(self, path):
        self.path = path

    def run(self, args):
        p = subprocess.run([self.path] + list(args), capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def ok(self, args):
        rc, out, err = self.run(args)
        if rc != 0:
            raise RuntimeError(f"fp8emu {' '.join(args)} exited {rc}: {err}")
        return out

    def json(self, args):
        return json.loads(self.ok(list(args) + ["--json"]))

    def table(self, fmt):
        return list(csv.DictReader(io.StringIO(self.ok(["table", fmt]))))


DEFAULTS = {"r": "rne", "s": "finite", "n": "canonical", "N": "32", "R": "0", "daz": False, "ftz": False}
STOCHASTIC = ("sr-a", "sr-b", "sr-c")


def explain_args(f, x, state):
    """`fp8emu explain` arguments for a state (every option spelled out, as the test chooses)."""
    s = {**DEFAULTS, **state}
    args = ["explain", f, x, "--rounding", s["r"], "--saturation", s["s"], "--nan", s["n"]]
    if s["r"] in STOCHASTIC:
        args += ["--sr-bits", s["N"], "--random", s["R"]]
    if s["daz"]:
        args.append("--daz")
    if s["ftz"]:
        args.append("--ftz")
    return args


def state_hash(f, x, state, extra=None):
    """The URL hash of a state, spelled as the page writes it back (so that it need not rewrite it)."""
    s = {**DEFAULTS, **state}
    parts = {"f": f, "x": x, "r": s["r"], "s": s["s"], "n": s["n"], "N": s["N"], "R": s["R"],
             "daz": "1" if s["daz"] else "0", "ftz": "1" if s["ftz"] else "0", "cmp": "e4m3fn,e5m2,bfloat16"}
    parts.update(extra or {})
    return "#" + "&".join(f"{k}={urllib.parse.quote(str(v), safe=':,=')}" for k, v in parts.items())


READ = """(() => {
  const t = (s, root) => { const e = (root || document).querySelector(s); return e ? e.textContent : null; };
  const rows = (sel, key, cells) => Array.from(document.querySelectorAll(sel), r => {
    const o = {key: r.dataset[key]};
    cells.forEach(c => { o[c] = t('.' + c, r); });
    return o;
  });
  return {
    renders: document.body.dataset.renders, value_box: document.getElementById('value').value,
    hex: t('#result-hex'), bits: t('#result-bits'), value: t('#result-value'), cls: t('#result-class'),
    below: t('#below'), below_value: t('#below .value'), below_hex: t('#below .hex'),
    above: t('#above'), above_value: t('#above .value'), above_hex: t('#above .hex'),
    error_ulps: t('#error-ulps'), relative_error: t('#relative-error'), status: t('#status'),
    round_away: t('#round-away'), format_error: t('#format-error'), value_error: t('#value-error'),
    cli_command: t('#cli-command'), cli_text: t('#cli-text'),
    modes: rows('#modes tr[data-mode]', 'mode', ['code', 'value', 'error-ulps', 'status', 'probability']),
    saturations: rows('#saturations tr[data-saturation]', 'saturation', ['code', 'value', 'status', 'description']),
    compare: rows('#compare-table tr[data-format]', 'format', ['code', 'bits', 'value', 'error-ulps', 'status', 'error']),
    codes: rows('#codes tr[data-code]', 'code', ['code', 'hex', 'bits', 'class', 'value']),
    density: Array.from(document.querySelectorAll('#density [data-exponent][data-count]'),
                        b => [Number(b.dataset.exponent), Number(b.dataset.count)]),
    ticks: document.querySelectorAll('#number-line line.value-tick').length,
    bit_buttons: document.querySelectorAll('#result-bits button.bit').length,
  };
})()"""


class Explorer:
    def __init__(self, page, url):
        self.page = page
        self.url = url

    def renders(self):
        return int(self.page.evaluate("Number(document.body.dataset.renders || 0)"))

    def after(self, action, before=None):
        """Runs action() and waits for the page's next render."""
        before = self.renders() if before is None else before
        action()
        self.page.wait_for(f"Number(document.body.dataset.renders || 0) > {before}", timeout=10)

    def open(self, h):
        """Opens the state of hash `h` and waits for its render (polled inside the page)."""
        if self.page.evaluate("location.hash") == h:
            return
        self.page.evaluate("new Promise(done => { const before = Number(document.body.dataset.renders);"
                           f" location.hash = {json.dumps(h)};"
                           " const poll = () => Number(document.body.dataset.renders) > before ? done(true)"
                           " : setTimeout(poll, 2); poll(); })", timeout=10)

    def read(self):
        return self.page.evaluate(READ)


def odds_text(j):
    o = j["round_away"]
    return NONE if o is None else f"{o['up']} / {o['of']} = {o['probability']}"


def text_or_none(v):
    return NONE if v is None else v


def check_result(c, what, shown, j, tool, text_args):
    """The result section and the command line against `fp8emu explain` (JSON and text)."""
    r = j["result"]
    c.equal(f"{what}: hex", shown["hex"], r["hex"])
    c.equal(f"{what}: bits", shown["bits"], r["bits"])
    c.equal(f"{what}: value", shown["value"], r["value"])
    c.equal(f"{what}: class", shown["cls"], r["class"])
    for side in ("below", "above"):
        n = j[side]
        if n is None:
            c.equal(f"{what}: {side}", shown[side], "none")
        else:
            c.equal(f"{what}: {side} value", shown[side + "_value"], n["value"])
            c.equal(f"{what}: {side} hex", shown[side + "_hex"], n["hex"])
    c.equal(f"{what}: error in ulps", shown["error_ulps"], text_or_none(j["error_ulps"]))
    c.equal(f"{what}: relative error", shown["relative_error"], text_or_none(j["relative_error"]))
    c.equal(f"{what}: status", shown["status"], j["status"])
    c.equal(f"{what}: round away", shown["round_away"], odds_text(j))
    c.equal(f"{what}: command-line text", shown["cli_text"], tool.ok(text_args))
    check_command(c, what, shown, tool)


def check_command(c, what, shown, tool):
    """The command line the page shows prints what the page shows as its output."""
    words = shlex.split(shown["cli_command"])
    c.equal(f"{what}: command starts with fp8emu explain", words[:2], ["fp8emu", "explain"])
    rc, out, err = tool.run(words[1:])
    c.equal(f"{what}: the page's command line ({shown['cli_command']}) prints #cli-text", (rc, out), (0, shown["cli_text"]))


def check_states(c, ex, tool):
    """Every sample format and value under the default options, opened by the URL hash."""
    n = 0
    for f in FORMATS:
        for x in VALUES:
            ex.open(state_hash(f, x, {}))
            check_result(c, f"{f} {x}", ex.read(), tool.json(explain_args(f, x, {})), tool, ["explain", f, x])
            n += 1
    c.equal("states checked", n, len(FORMATS) * len(VALUES))


def check_modes(c, ex, tool):
    """The table of every rounding mode against one --rounding run each; the chosen mode's result too."""
    rows_checked = 0
    cases = [("e4m3fn", "3.3"), ("e4m3fn", "1.0625"), ("e5m2", "-0.1"), ("bfloat16", "3.3"), ("e2m1fn", "480"),
             ("binary8p3se", "1e-9"), ("e3m4", "-0.1"), ("e8m0fnu", "3.3")]
    for f, x in cases:
        for state in ({}, {"N": "4", "R": "5"}):
            ex.open(state_hash(f, x, state))
            shown = ex.read()
            c.equal(f"{f} {x}: modes rows", [m["key"] for m in shown["modes"]], MODES)
            for m in shown["modes"]:
                st = {**state, "r": m["key"]}
                j = tool.json(explain_args(f, x, st))
                what = f"{f} {x} {m['key']} N={st.get('N', '32')} R={st.get('R', '0')}"
                c.equal(f"{what}: mode code", m["code"], j["result"]["hex"])
                c.equal(f"{what}: mode value", m["value"], j["result"]["value"])
                c.equal(f"{what}: mode error ulps", m["error-ulps"], text_or_none(j["error_ulps"]))
                c.equal(f"{what}: mode status", m["status"], j["status"])
                c.equal(f"{what}: mode probability", m["probability"], odds_text(j))
                rows_checked += 1
    c.equal("mode rows checked", rows_checked, len(cases) * 2 * len(MODES))


def check_stochastic(c, ex, tool):
    """sr-a, sr-b, sr-c with N in {1, 4, 32} and several R: the result, its odds and the text."""
    n = 0
    for f, x in (("e4m3fn", "3.3"), ("bfloat16", "-0.1"), ("e2m1fn", "1.2")):
        for r in STOCHASTIC:
            for bits, randoms in (("1", ("0", "1")), ("4", ("0", "7", "15")), ("32", ("0", "2147483648", "4294967295"))):
                for rv in randoms:
                    st = {"r": r, "N": bits, "R": rv}
                    ex.open(state_hash(f, x, st))
                    check_result(c, f"{f} {x} {r} N={bits} R={rv}", ex.read(), tool.json(explain_args(f, x, st)),
                                 tool, explain_args(f, x, st))
                    n += 1
    c.equal("stochastic states checked", n, 3 * 3 * 8)


def check_saturation(c, ex, tool):
    """The saturation rows against --saturation runs, under two roundings."""
    n = 0
    for f in ("e4m3fn", "e5m2", "e4m3fnuz", "e2m1fn", "bfloat16"):
        for x in ("480", "1e6", "-1e6", "inf", "-inf", "nan", "3.3"):
            for r in ("rne", "rz"):
                ex.open(state_hash(f, x, {"r": r}))
                shown = ex.read()
                c.equal(f"{f} {x}: saturation rows", [s["key"] for s in shown["saturations"]], SATURATIONS)
                for s in shown["saturations"]:
                    j = tool.json(explain_args(f, x, {"r": r, "s": s["key"]}))
                    what = f"{f} {x} {r} saturation {s['key']}"
                    c.equal(f"{what}: code", s["code"], j["result"]["hex"])
                    c.equal(f"{what}: value", s["value"], j["result"]["value"])
                    c.equal(f"{what}: status", s["status"], j["status"])
                    n += 1
    c.equal("saturation rows checked", n, 5 * 7 * 2 * len(SATURATIONS))
    # The chosen saturation, NaN mode and flushing in the result section.
    for f, x, st in (("e4m3fn", "480", {"s": "none"}), ("e5m2", "inf", {"s": "propagate"}),
                     ("e4m3fn", "nan", {"n": "nvidia"}), ("e5m2", "-nan", {"n": "nvidia"}),
                     ("e4m3fn", "0x1p-8", {"daz": True}), ("e4m3fn", "0x1.8p-7", {"ftz": True, "r": "rz"}),
                     ("float16", "1e-6", {"daz": True, "ftz": True, "s": "none", "r": "ru"})):
        ex.open(state_hash(f, x, st))
        check_result(c, f"{f} {x} {st}", ex.read(), tool.json(explain_args(f, x, st)), tool, explain_args(f, x, st))


def check_typing(c, ex, tool):
    """Real typing into the inputs and choosing from the selects."""
    p = ex.page
    ex.open(state_hash("e4m3fn", "1", {}))
    ex.after(lambda: p.fill("#format", "e5m2"))
    ex.after(lambda: p.fill("#value", "-0.1"))
    ex.after(lambda: p.select("#rounding", "rz"))
    check_result(c, "typed e5m2 -0.1 rz", ex.read(), tool.json(explain_args("e5m2", "-0.1", {"r": "rz"})),
                 tool, explain_args("e5m2", "-0.1", {"r": "rz"}))
    c.true("typing: the hash follows", "f=e5m2" in p.evaluate("location.hash") and "r=rz" in p.evaluate("location.hash"))
    ex.after(lambda: p.select("#rounding", "sr-b"))
    ex.after(lambda: p.fill("#sr-bits", "4"))
    ex.after(lambda: p.fill("#random", "9"))
    st = {"r": "sr-b", "N": "4", "R": "9"}
    check_result(c, "typed sr-b N=4 R=9", ex.read(), tool.json(explain_args("e5m2", "-0.1", st)),
                 tool, explain_args("e5m2", "-0.1", st))
    ex.after(lambda: p.select("#saturation", "none"))
    ex.after(lambda: p.click("#ftz"))
    ex.after(lambda: p.fill("#format", ""))
    p.focus("#format")
    ex.after(lambda: p.type_text("e5m2:bias=16"))
    ex.after(lambda: p.fill("#value", "0x1.8p-17"))
    st = {"r": "sr-b", "N": "4", "R": "9", "s": "none", "ftz": True}
    check_result(c, "typed e5m2:bias=16 0x1.8p-17", ex.read(), tool.json(explain_args("e5m2:bias=16", "0x1.8p-17", st)),
                 tool, explain_args("e5m2:bias=16", "0x1.8p-17", st))
    # A bad value: the module's message, the same the tool prints.
    ex.after(lambda: p.fill("#value", "3.3x"))
    rc, out, err = ex_tool_error(tool, ["explain", "e4m3fn", "3.3x"])
    c.equal("bad value: message", ex.read()["value_error"], err)


def ex_tool_error(tool, args):
    rc, out, err = tool.run(args)
    prefix = "fp8emu: error: "
    lines = err.strip().splitlines()
    return rc, out, lines[0][len(prefix):] if lines and lines[0].startswith(prefix) else err.strip()


def check_bad_format(c, ex, tool):
    """A bad spelling shows the tool's message; the rest of the page keeps its last good state."""
    p = ex.page
    ex.open(state_hash("e4m3fn", "3.3", {}))
    good = ex.read()
    for bad in ("e9m9x", "e4m3:policy=zz", "bfloat17"):
        ex.after(lambda: p.fill("#format", bad))
        shown = ex.read()
        rc, out, err = ex_tool_error(tool, ["explain", bad, "3.3"])
        c.equal(f"bad format {bad}: tool exits 2", rc, 2)
        c.equal(f"bad format {bad}: message", shown["format_error"], err)
        c.equal(f"bad format {bad}: result kept", (shown["hex"], shown["value"], shown["cli_text"]),
                (good["hex"], good["value"], good["cli_text"]))
    ex.after(lambda: p.fill("#format", "e4m3fn"))
    c.equal("format error cleared", ex.read()["format_error"], "")


def check_bits(c, ex, tool):
    """Three bit clicks and two key presses, each against `fp8emu explain F --code C`."""
    p = ex.page
    for f, x, bits in (("e4m3fn", "3.3", (0, 3, 7)), ("bfloat16", "-0.1", (15, 7, 1)), ("e2m1fn", "6", (1, 0, 3)),
                       ("e8m0fnu", "1", (7, 0, 2))):
        ex.open(state_hash(f, x, {}))
        code = tool.json(explain_args(f, x, {}))["result"]["code"]
        for bit in bits:
            code ^= 1 << bit
            ex.after(lambda: p.click(f'button.bit[data-bit="{bit}"]'))
            shown = ex.read()
            j = tool.json(["explain", f, "--code", str(code)])
            what = f"{f} click bit {bit} -> code {code}"
            c.equal(f"{what}: hex", shown["hex"], j["hex"])
            c.equal(f"{what}: bits", shown["bits"], j["bits"])
            c.equal(f"{what}: value", shown["value"], j["value"])
            c.equal(f"{what}: class", shown["cls"], j["class"])
            c.equal(f"{what}: value box", shown["value_box"], j["value"])
            c.equal(f"{what}: command-line text", shown["cli_text"], j["text"])
            check_command(c, what, shown, tool)
            pressed = p.evaluate(f'document.querySelector(\'button.bit[data-bit="{bit}"]\').getAttribute("aria-pressed")')
            c.equal(f"{what}: aria-pressed", pressed, "true" if code >> bit & 1 else "false")
    # Keyboard: Tab from the last control reaches the first bit (the most significant); Space flips it.
    ex.open(state_hash("e4m3fn", "3.3", {}))
    code = tool.json(explain_args("e4m3fn", "3.3", {}))["result"]["code"]
    p.focus("#ftz")
    p.press("Tab")
    c.equal("Tab reaches the first bit", p.evaluate("document.activeElement.dataset.bit"), "7")
    label = p.evaluate("document.activeElement.getAttribute('aria-label')")
    c.equal("the sign bit's label", label, "sign bit, 0")
    for bit in (7, 6):
        code ^= 1 << bit
        ex.after(lambda: p.press("Space"))
        shown = ex.read()
        j = tool.json(["explain", "e4m3fn", "--code", str(code)])
        c.equal(f"Space on bit {bit}: hex", shown["hex"], j["hex"])
        c.equal(f"Space on bit {bit}: value", shown["value"], j["value"])
        c.equal(f"Space on bit {bit}: focus stays", p.evaluate("document.activeElement.dataset.bit"), str(bit))
        p.press("Tab")
    # After the sign (bit 7) and exponent bit 3 (bit 6), Tab reaches exponent bit 2 (bit 5).
    c.equal("an exponent bit's label", p.evaluate("document.activeElement.getAttribute('aria-label')"),
            "exponent bit 2, " + str(code >> 5 & 1))


def check_codes(c, ex, tool):
    """The code table's pages against `fp8emu table F`; a row click and Enter select a code."""
    p = ex.page
    for f, page in (("e4m3fn", 0), ("e2m1fn", 0), ("e8m0fnu", 0), ("e3m2fn", 0), ("float16", 0), ("float16", 123),
                    ("bfloat16", 255)):
        rows = tool.table(f)
        ex.open(state_hash(f, "1", {}, {"p": page}))
        shown = ex.read()
        want = [[r["code"], r["hex"], r["bits"], r["class"], r["value"]] for r in rows[page * 256:(page + 1) * 256]]
        got = [[r["code"], r["hex"], r["bits"], r["class"], r["value"]] for r in shown["codes"]]
        c.equal(f"{f} code table page {page}: rows", len(got), len(want))
        c.equal(f"{f} code table page {page}", got, want)
        c.equal(f"{f} code table page {page}: number", p.evaluate("document.getElementById('codes-page').textContent")
                .startswith(f"page {page + 1} of {(len(rows) + 255) // 256}"), True)
    # The next-page button, then a click on a row and Enter on another.
    ex.open(state_hash("float16", "1", {}))
    ex.after(lambda: p.click("#codes-next"))
    c.equal("next page: first code", ex.read()["codes"][0]["code"], "256")
    for how, code in (("click", 300), ("Enter", 511), ("ArrowDown, Enter", 302)):
        if how == "click":
            ex.after(lambda: p.click(f'tr[data-code="{code}"]'))
        elif how == "Enter":
            p.focus(f'tr[data-code="{code}"]')
            ex.after(lambda: p.press("Enter"))
        else:
            p.focus(f'tr[data-code="{code - 1}"]')
            p.press("ArrowDown")
            c.equal("ArrowDown moves to the next row", p.evaluate("document.activeElement.dataset.code"), str(code))
            ex.after(lambda: p.press("Enter"))
        j = tool.json(["explain", "float16", "--code", str(code)])
        shown = ex.read()
        c.equal(f"{how} on row {code}: hex", shown["hex"], j["hex"])
        c.equal(f"{how} on row {code}: value", shown["value"], j["value"])
        c.equal(f"{how} on row {code}: text", shown["cli_text"], j["text"])


def check_density(c, ex, tool):
    """The bars per binade against counts of `fp8emu table F`'s positive finite values."""
    for f in ("e4m3fn", "e5m2", "e2m1fn", "e3m2fn", "e8m0fnu", "e4m3fnuz", "binary8p3se", "e3m4", "e5m2:bias=16",
              "float16", "bfloat16"):
        counts = {}
        for r in tool.table(f):
            if r["class"] in ("normal", "subnormal") and float(r["value"]) > 0:
                e = math.frexp(float(r["value"]))[1] - 1  # v = m 2^e, 0.5 <= m < 1: floor(log2 v) = e - 1
                counts[e] = counts.get(e, 0) + 1
        ex.open(state_hash(f, "1", {}))
        shown = ex.read()
        c.equal(f"{f} density per binade", dict(shown["density"]), counts)
        total = sum(counts.values())
        c.equal(f"{f} number line ticks", shown["ticks"], total if total <= 512 else 0)


def check_compare(c, ex, tool):
    """The formats side by side against separate explain runs."""
    n = 0
    for cmp, x, st in (("e4m3fn,e5m2,bfloat16", "3.3", {}), ("e2m1fn, e3m2fn ,float16,e8m0fnu", "-0.1", {"r": "rz"}),
                       ("e4m3fnuz,e5m2:bias=16", "480", {"s": "none"}), ("e4m3fn,e5m2", "3.3", {"r": "sr-c", "N": "4", "R": "3"})):
        ex.open(state_hash("e4m3fn", x, st, {"cmp": cmp}))
        shown = ex.read()
        names = [s.strip() for s in cmp.split(",")]
        c.equal(f"compare {cmp}: rows", [r["key"] for r in shown["compare"]], names)
        for row in shown["compare"]:
            j = tool.json(explain_args(row["key"], x, st))
            what = f"compare {row['key']} {x} {st}"
            c.equal(f"{what}: code", row["code"], j["result"]["hex"])
            c.equal(f"{what}: bits", row["bits"], j["result"]["bits"])
            c.equal(f"{what}: value", row["value"], j["result"]["value"])
            c.equal(f"{what}: error ulps", row["error-ulps"], text_or_none(j["error_ulps"]))
            c.equal(f"{what}: status", row["status"], j["status"])
            n += 1
    c.equal("compare rows checked", n, 3 + 4 + 2 + 2)
    ex.open(state_hash("e4m3fn", "1", {}, {"cmp": "e4m3fn,nonsense"}))
    bad = [r for r in ex.read()["compare"] if r["key"] == "nonsense"]
    c.equal("compare: a bad name's row shows the tool's message", bad[0]["error"] if bad else None,
            ex_tool_error(tool, ["explain", "nonsense", "1"])[2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--explorer", required=True, help="the folder with index.html and fp8emu_explorer.js")
    ap.add_argument("--tool", required=True, help="the fp8emu command-line tool")
    ap.add_argument("--artifacts", required=True, help="where the screenshots go")
    args = ap.parse_args()
    index = os.path.join(os.path.abspath(args.explorer), "index.html")
    if not os.path.isfile(index) or not os.path.isfile(os.path.join(args.explorer, "fp8emu_explorer.js")):
        print(f"skipped: the explorer is not built ({index} or the module beside it is missing)")
        return 77
    chromium = find_chromium()
    if not chromium:
        print("skipped: chromium not found (Debian: chromium)")
        return 77
    os.makedirs(args.artifacts, exist_ok=True)
    tool = Tool(os.path.abspath(args.tool))
    global MODES, SATURATIONS
    c = Checks()
    url = "file://" + urllib.parse.quote(index)
    # Hundreds of states opened through the hash within seconds: without this flag Chromium
    # throttles the page's same-document navigations (crbug.com/1038223).
    with Browser.launch(executable=chromium, width=1280, height=900, timeout=30,
                        args=("--disable-ipc-flooding-protection",)) as b:
        page = b.new_page()
        page.goto(url + state_hash("e4m3fn", "3.3", {}))
        page.wait_for("document.body.dataset.ready === '1'", timeout=20)
        ex = Explorer(page, url)
        MODES = [r["key"] for r in ex.read()["modes"]]
        SATURATIONS = [r["key"] for r in ex.read()["saturations"]]
        c.equal("the modes table lists the tool's roundings", MODES, tool_names(tool, "--rounding MODE"))
        c.equal("the saturation table lists the tool's modes", SATURATIONS, tool_names(tool, "--saturation S"))
        for check in (check_states, check_modes, check_stochastic, check_saturation, check_typing, check_bad_format,
                      check_bits, check_codes, check_density, check_compare):
            before = c.passed + c.failed
            try:
                check(c, ex, tool)
            except (BrowserError, RuntimeError) as e:
                c.failed += 1
                print(f"FAIL {check.__name__}: {e}")
            print(f"{check.__name__[len('check_'):]}: {c.passed + c.failed - before} checks")
        ex.open(state_hash("e4m3fn", "3.3", {"r": "sr-a", "N": "4", "R": "3"}, {"cmp": "e4m3fn,e5m2,bfloat16"}))
        page.screenshot(os.path.join(args.artifacts, "explorer-desktop.png"), full_page=True)
        for width, height in ((390, 844), (360, 740)):
            before = ex.renders()
            page.set_viewport(width, height, mobile=True, scale=2)
            page.wait_for(f"innerWidth === {width} && Number(document.body.dataset.renders) > {before}", timeout=10)
            sizes = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            c.true(f"no horizontal scrolling at {width} px", sizes[0] <= sizes[1], f"scrollWidth {sizes[0]}, innerWidth {sizes[1]}")
            if width == 390:
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(os.path.join(args.artifacts, "explorer-phone.png"), full_page=False)
        errors = [m for m in page.console_messages() if m[0] in ("error", "exception", "assert")]
        c.equal("console errors", errors, [])
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


def tool_names(tool, option):
    """The names `fp8emu explain --help` lists for `option`: "--rounding MODE  rne (default), rna, ..."
    and its continuation lines, split at the commas outside parentheses, the first word of each."""
    text, inside = "", False
    for line in tool.ok(["explain", "--help"]).splitlines():
        stripped = line.strip()
        if stripped.startswith(option):
            text, inside = stripped[len(option):], True
        elif inside and stripped and not stripped.startswith("-"):
            text += " " + stripped
        else:
            inside = False if text else inside
    names, depth, word = [], 0, ""
    for ch in text + ",":
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            if word.split():
                names.append(word.split()[0])
            word = ""
        else:
            word += ch
    return names


MODES = None
SATURATIONS = None

if __name__ == "__main__":
    sys.exit(main())
