/* fp8emu format explorer (index.html): the page's logic.
 *
 * Every number on the page is a string the WebAssembly module returned (fp8emu's own code,
 * the same that `fp8emu explain` runs): the page never formats a number itself; it only
 * lays out the drawings (log2 positions) from them. The option names (rounding, saturation,
 * NaN) come from M.options(), the format names from M.catalog().
 *
 * State in the URL hash, read on load and on hashchange:
 *   #f=FORMAT&x=VALUE&r=ROUNDING&s=SATURATION&n=NAN&N=BITS&R=RANDOM&daz=0|1&ftz=0|1
 *    &cmp=F1,F2,F3[&c=CODE (a code chosen by its bits or the table)][&p=PAGE of the code table]
 *
 * What a test reads (textContent unless an attribute is named):
 *   body[data-ready="1"]          the module is loaded and the first state rendered
 *   body[data-renders]            incremented after every render (also one that shows an error)
 *   #format-error, #value-error   the module's error message for a bad format / value / N / R
 *   #format-props dd[data-prop=K] format_json member K (numbers as the module's text)
 *   #result-hex #result-value #result-class   the code (hex), its value and class
 *   #result-bits                  the bits as fp8emu prints them ("0 1000 101"); inside,
 *     button.bit[data-bit=i]      bit i (0 = least significant) with aria-pressed; clicking
 *                                 one flips it and selects the resulting code (hash c=)
 *   #below, #above                "VALUE (HEX)", with .value and .hex inside; "none" if absent
 *   #error-ulps #relative-error #status #round-away   "—" where fp8emu has none;
 *                                 round away as "UP / OF = PROBABILITY" (.up .of .probability)
 *   #modes tr[data-mode=M]        cells .name .description .code .value .error-ulps .status
 *                                 .probability ("—" for deterministic modes or exact inputs)
 *   #saturations tr[data-saturation=S]   cells .name .description .code .value .status
 *   #compare-table tr[data-format=F]     cells .format .code .bits .value .error-ulps .status
 *                                 (.error instead when F is not a format)
 *   #density [data-exponent][data-count]  one bar per binade (data-subnormal="1" if subnormal)
 *   #number-line line.value-tick  one per positive finite value when there are at most 512
 *   #codes tr[data-code=N]        cells .code .hex .bits .class .value (the current code's row:
 *                                 class "current", aria-current); #codes-page, #codes-prev,
 *                                 #codes-next; one row is in the tab order, arrows move, Enter selects
 *   #cli-command, #cli-text       the equivalent command line and what it prints
 */
(function () {
  "use strict";

  var PAGE_SIZE = 256;   // codes per page of the code table
  var MAX_TICKS = 512;   // above this many values the number line shades by density
  var MAX_COMPARE = 4;
  var NONE = "\u2014";   // shown where fp8emu gives no value (JSON null)
  var SVG = "http://www.w3.org/2000/svg";

  var M = null;          // the WebAssembly module
  var OPTIONS = null;    // M.options()
  var state = null;
  var writtenHash = null;
  var renders = 0;
  var codesShown = null;  // the format and page the code table shows

  function $(id) { return document.getElementById(id); }

  // Returns M[name](...args) parsed; the module returns JSON text.
  function call(name) {
    return JSON.parse(M[name].apply(M, Array.prototype.slice.call(arguments, 1)));
  }
  // {"error": message} is a failure; an explanation also has a member "error" (result - x).
  function failed(r) {
    return r !== null && typeof r === "object" && !Array.isArray(r) && Object.keys(r).length === 1 && "error" in r;
  }

  // Returns a new element: el("td", {class: "value"}, "3.25", child, ...).
  function el(tag, attrs) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, Array.prototype.slice.call(arguments, 2));
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    setAttrs(e, attrs);
    append(e, Array.prototype.slice.call(arguments, 2));
    return e;
  }
  function setAttrs(e, attrs) {
    for (var k in attrs || {}) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
  }
  function append(e, children) {
    children.forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
  }
  function text(v) { return v === null || v === undefined ? NONE : String(v); }
  function byName(list, name) {
    for (var i = 0; i < list.length; ++i) if (list[i].name === name) return list[i];
    return null;
  }

  // ---- state and the URL hash -------------------------------------------------------------

  function defaults() {
    var stochastic = OPTIONS.rounding.filter(function (o) { return o.stochastic; });
    return {
      f: "e4m3fn", x: "3.3",
      r: OPTIONS.rounding[0].name, s: OPTIONS.saturation[0].name, n: OPTIONS.nan[0].name,
      N: String(stochastic.length ? stochastic[0].default_bits : 32), R: "0",
      daz: false, ftz: false, cmp: "e4m3fn,e5m2,bfloat16", c: null, p: 0
    };
  }

  function readHash() {
    var s = defaults();
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf("=");
      var k = i < 0 ? kv : kv.slice(0, i);
      var v = i < 0 ? "" : decodeURIComponent(kv.slice(i + 1));
      if (k === "daz" || k === "ftz") s[k] = v === "1" || v === "true" || v === "";
      else if (k === "c") s.c = /^(0x[0-9a-f]+|[0-9]+)$/i.test(v) ? Number(v) : null;
      else if (k === "p") s.p = /^[0-9]+$/.test(v) ? Number(v) : 0;
      else if (k in s) s[k] = v;
    });
    return s;
  }

  function writeHash() {
    function enc(v) { return encodeURIComponent(v).replace(/%3A/g, ":").replace(/%2C/g, ",").replace(/%3D/g, "="); }
    var parts = ["f=" + enc(state.f), "x=" + enc(state.x), "r=" + enc(state.r), "s=" + enc(state.s),
                 "n=" + enc(state.n), "N=" + enc(state.N), "R=" + enc(state.R),
                 "daz=" + (state.daz ? 1 : 0), "ftz=" + (state.ftz ? 1 : 0), "cmp=" + enc(state.cmp)];
    if (state.c !== null) parts.push("c=" + state.c);
    if (state.p) parts.push("p=" + state.p);
    writtenHash = "#" + parts.join("&");
    // replace(): no history entry per keystroke; hashchange ignores what the page wrote itself.
    if (location.hash !== writtenHash) location.replace(writtenHash);
  }

  function showInputs() {
    $("format").value = state.f;
    $("value").value = state.x;
    $("rounding").value = state.r;
    $("saturation").value = state.s;
    $("nan").value = state.n;
    $("sr-bits").value = state.N;
    $("random").value = state.R;
    $("daz").checked = state.daz;
    $("ftz").checked = state.ftz;
    $("compare").value = state.cmp;
  }

  // ---- rendering ----------------------------------------------------------------------------

  // The live regions stay in the page (empty when all is well), so that screen readers announce them.
  function showError(id, message) {
    if ($(id).textContent !== message) $(id).textContent = message;
  }

  // Returns a message when the text of N or R is not a whole number, else null (the module
  // checks their ranges and says so in its own words).
  function wholeNumber(textValue, what) {
    return /^\s*[0-9]+\s*$/.test(textValue) ? null : what + " must be a whole number, not '" + textValue + "'";
  }

  function render() {
    var focus = focusedKey();
    measureDrawings();
    var fmt = call("format", state.f);
    if (failed(fmt)) {
      showError("format-error", fmt.error);
      return finish(focus);
    }
    showError("format-error", "");
    renderFormat(fmt);

    var bad = wholeNumber(state.N, "The number of random bits N") || wholeNumber(state.R, "The random value R");
    if (bad) {
      showError("value-error", bad);
      return finish(focus);
    }
    var N = Number(state.N), R = Number(state.R);
    var main;
    if (state.c !== null) {
      main = call("code", state.f, state.c);
      if (!failed(main)) state.x = main.value;  // the value box shows the chosen code's value
      $("value").value = state.x;
    } else {
      main = call("explain", state.f, state.x, state.r, state.s, state.n, state.daz, state.ftz, N, R);
    }
    var all = failed(main) ? main : call("explainAll", state.f, state.x, state.s, state.n, state.daz, state.ftz, N, R);
    if (failed(all)) {
      showError("value-error", all.error);
      return finish(focus);
    }
    showError("value-error", "");
    var sats = OPTIONS.saturation.map(function (o) {
      return call("explain", state.f, state.x, state.r, o.name, state.n, state.daz, state.ftz, N, R);
    });
    var current = state.c !== null ? null : main;  // the explanation, when not a chosen code
    var shown = current ? main.result : main;      // the code shown: {code, hex, bits, value, ...}
    var input = all[0].input;  // the module's text of x (decimal, whatever was typed)

    renderResult(fmt, main, state.c !== null);
    renderModes(all);
    renderSaturations(sats);
    var data = drawingData(state.f);
    renderNumberLine(data, input, shown.value);
    renderDensity(data.binades);
    renderCompare(N, R, input);
    renderCodes(fmt, shown.code);
    renderCli(main, current);
    return finish(focus);
  }

  // Ends every render, also one that shows an error: the hash, the focus, the count for tests.
  function finish(focus) {
    writeHash();
    restoreFocus(focus);
    document.body.dataset.renders = String(++renders);
  }

  // Re-rendering replaces the bit buttons and table rows: keep the keyboard focus on the same one.
  function focusedKey() {
    var a = document.activeElement;
    if (a && a.classList && a.classList.contains("bit")) return "button.bit[data-bit=\"" + a.dataset.bit + "\"]";
    if (a && a.dataset && a.dataset.code !== undefined && a.tagName === "TR") return "tr[data-code=\"" + a.dataset.code + "\"]";
    return null;
  }
  function restoreFocus(selector) {
    var e = selector && document.querySelector(selector);
    if (e && e !== document.activeElement) e.focus();
  }

  var FORMAT_PROPS = [
    ["name", "name"], ["bits", "bits"], ["signed", "signed"], ["exponent_bits", "exponent bits"],
    ["mantissa_bits", "mantissa bits"], ["bias", "bias"], ["policy", "policy"],
    ["max_finite", "largest finite"], ["min_normal", "smallest normal"],
    ["min_positive", "smallest positive"], ["epsilon", "epsilon"], ["emin", "emin"], ["emax", "emax"],
    ["finite_codes", "finite codes"], ["has_subnormals", "subnormals"], ["has_negative_zero", "negative zero"],
    ["pos_inf_code", "+inf code"], ["neg_inf_code", "-inf code"], ["nan_code", "NaN code"], ["source", "source"]
  ];

  function renderFormat(fmt) {
    var dl = $("format-props");
    dl.textContent = "";
    FORMAT_PROPS.forEach(function (p) {
      var v = fmt[p[0]];
      if (typeof v === "boolean") v = v ? "yes" : "no";
      if (p[0] === "source" && !v) v = "custom spelling (not in the catalog)";
      dl.appendChild(el("dt", null, p[1]));
      dl.appendChild(el("dd", {"data-prop": p[0]}, v === null ? "none" : String(v)));
    });
    if (fmt.note) {
      dl.appendChild(el("dt", null, "note"));
      dl.appendChild(el("dd", {"data-prop": "note", class: "variant-note"}, fmt.note));
    }
  }

  // The fields of a code, in the order field_bits() prints them.
  function fieldNames(fmt) {
    var names = [];
    if (fmt.signed) names.push("sign");
    if (fmt.exponent_bits > 0) names.push("exponent");
    if (fmt.mantissa_bits > 0) names.push("mantissa");
    return names;
  }

  function renderBits(fmt, bits) {
    var box = $("result-bits");
    box.textContent = "";
    var groups = bits.split(" ");
    var names = fieldNames(fmt);
    if (names.length !== groups.length) names = groups.map(function () { return "code"; });
    var all = groups.join("");
    var k = 0;
    groups.forEach(function (g, gi) {
      var field = el("span", {class: "field field-" + names[gi], "data-label": names[gi]});
      for (var j = 0; j < g.length; ++j, ++k) {
        var within = g.length - 1 - j;
        var label = names[gi] === "sign" ? "sign bit, " + g[j] : names[gi] + " bit " + within + ", " + g[j];
        var b = el("button", {type: "button", class: "bit", "data-bit": all.length - 1 - k,
                              "aria-pressed": g[j] === "1" ? "true" : "false", "aria-label": label,
                              title: label + " (press to flip)"}, g[j]);
        b.addEventListener("click", flipBit.bind(null, all, k));
        field.appendChild(b);
      }
      if (gi > 0) box.appendChild(document.createTextNode(" "));
      box.appendChild(field);
    });
  }

  function flipBit(all, k) {
    var flipped = all.slice(0, k) + (all[k] === "1" ? "0" : "1") + all.slice(k + 1);
    state.c = parseInt(flipped, 2);
    render();
  }

  function neighbour(dd, c) {
    dd.textContent = "";
    if (!c) { dd.textContent = c === undefined ? NONE : "none"; return; }
    append(dd, [el("span", {class: "value"}, c.value), " (", el("span", {class: "hex"}, c.hex), ")"]);
  }

  function odds(node, e) {
    node.textContent = "";
    var o = e && e.round_away;
    if (!o) { node.textContent = NONE; return; }
    append(node, [el("span", {class: "up"}, String(o.up)), " / ", el("span", {class: "of"}, String(o.of)),
                  " = ", el("span", {class: "probability"}, o.probability)]);
  }

  function renderResult(fmt, r, isCode) {
    $("result-mode").textContent = isCode
      ? "Code " + r.hex + " chosen by its bits or in the table (type a value to convert one)."
      : "x = " + r.input + " in " + r.format + ", rounding " + r.rounding + ", saturation " + r.saturation + ".";
    var c = isCode ? r : r.result;
    $("result-hex").textContent = c.hex;
    renderBits(fmt, c.bits);
    $("result-value").textContent = c.value;
    $("result-class").textContent = c["class"];
    neighbour($("below"), isCode ? undefined : r.below);
    neighbour($("above"), isCode ? undefined : r.above);
    $("error-ulps").textContent = isCode ? NONE : text(r.error_ulps);
    $("relative-error").textContent = isCode ? NONE : text(r.relative_error);
    odds($("round-away"), isCode ? null : r);
    $("status").textContent = isCode ? NONE : r.status;
  }

  function renderModes(all) {
    var body = $("modes").tBodies[0];
    body.textContent = "";
    all.forEach(function (e) {
      var o = byName(OPTIONS.rounding, e.rounding);
      var probability = el("td", {class: "probability"});
      odds(probability, o.stochastic ? e : null);
      var name = el("th", {scope: "row", class: "name"}, e.rounding);
      var row = el("tr", {"data-mode": e.rounding, class: e.rounding === state.r ? "current" : null},
                   name, el("td", {class: "description"}, o.description),
                   el("td", {class: "code"}, e.result.hex), el("td", {class: "value"}, e.result.value),
                   el("td", {class: "error-ulps"}, text(e.error_ulps)), el("td", {class: "status"}, e.status),
                   probability);
      if (e.rounding === state.r) name.appendChild(el("span", {class: "marker"}, " (selected)"));
      body.appendChild(row);
    });
  }

  function renderSaturations(list) {
    var body = $("saturations").tBodies[0];
    body.textContent = "";
    list.forEach(function (e) {
      var name = el("th", {scope: "row", class: "name"}, e.saturation);
      if (e.saturation === state.s) name.appendChild(el("span", {class: "marker"}, " (selected)"));
      body.appendChild(el("tr", {"data-saturation": e.saturation, class: e.saturation === state.s ? "current" : null},
                          name, el("td", {class: "description"}, byName(OPTIONS.saturation, e.saturation).description),
                          el("td", {class: "code"}, e.result.hex), el("td", {class: "value"}, e.result.value),
                          el("td", {class: "status"}, e.status)));
    });
  }

  // ---- drawings: positions on a log2 axis (layout only; the labels are the module's text) ---

  // Returns {fmt, binades, values} of a good spelling, computed once: values are the positive
  // finite values as numbers (for their positions), or null when there are more than MAX_TICKS.
  var drawn = {};
  function drawingData(spelling) {
    if (drawn[spelling]) return drawn[spelling];
    var fmt = call("format", spelling), binades = call("binades", spelling), values = null;
    var count = binades.reduce(function (n, b) { return n + b.count; }, 0);
    if (count <= MAX_TICKS && fmt.bits <= 12) {
      values = call("codes", spelling, 0, Math.pow(2, fmt.bits)).filter(function (c) {
        return (c["class"] === "normal" || c["class"] === "subnormal") && c.value.charAt(0) !== "-";
      }).map(function (c) { return Number(c.value); });
    }
    drawn[spelling] = {fmt: fmt, binades: binades, values: values};
    return drawn[spelling];
  }

  function axisRange(binadeLists) {
    var lo = Infinity, hi = -Infinity;
    binadeLists.forEach(function (b) {
      if (!b.length) return;
      lo = Math.min(lo, b[0].exponent);
      hi = Math.max(hi, b[b.length - 1].exponent + 1);
    });
    if (lo === Infinity) { lo = 0; hi = 1; }
    return {lo: lo, hi: hi};
  }

  // The drawings' widths, read once per render before it changes the page (one layout).
  var widths = {};
  function measureDrawings() {
    ["line-box", "density-box", "compare-box"].forEach(function (id) { widths[id] = Math.max(280, $(id).clientWidth - 2); });
  }
  function drawingWidth(boxId) { return widths[boxId]; }

  // Returns the x position of log2 value l on an axis [range.lo, range.hi] drawn over [left, right].
  function scale(range, left, right) {
    return function (l) { return left + (l - range.lo) / (range.hi - range.lo) * (right - left); };
  }

  function power(k, x, y, anchor) {
    return svg("text", {x: x, y: y, "text-anchor": anchor || "middle", class: "axis-label"},
               "2", svg("tspan", {dy: -6, "font-size": "0.75em"}, String(k)));
  }

  // The powers of two as vertical lines from top to bottom, labelled below at y.
  // Every binade gets a line where they are at least 8 px apart, else only the labelled ones.
  function drawBinadeLines(g, range, X, top, bottom, labelY, width) {
    var step = Math.max(1, Math.ceil((range.hi - range.lo) / Math.max(1, Math.floor(width / 56))));
    var every = X(range.lo + 1) - X(range.lo) >= 8;
    for (var k = range.lo; k <= range.hi; ++k) {
      var labelled = (k - range.lo) % step === 0;
      if (every || labelled) g.appendChild(svg("line", {x1: X(k), x2: X(k), y1: top, y2: bottom, class: "binade-line"}));
      if (labelled) g.appendChild(power(k, X(k), labelY));
    }
  }

  // One lane of values: ticks when they are few, else a shade per binade by density.
  function drawValues(g, range, X, y, height, values, binades) {
    g.appendChild(svg("line", {x1: X(range.lo), x2: X(range.hi), y1: y + height, y2: y + height, class: "axis"}));
    if (values) {
      values.forEach(function (v) {
        var x = X(Math.log2(v));
        g.appendChild(svg("line", {x1: x, x2: x, y1: y, y2: y + height, class: "value-tick"}));
      });
      return;
    }
    var max = Math.max.apply(null, binades.map(function (b) { return b.count; }));
    binades.forEach(function (b) {
      var x0 = X(b.exponent), x1 = X(b.exponent + 1);
      g.appendChild(svg("rect", {x: x0, y: y, width: Math.max(0.5, x1 - x0), height: height,
                                 class: b.subnormal ? "shade subnormal" : "shade",
                                 "fill-opacity": (0.15 + 0.85 * Math.log(1 + b.count) / Math.log(1 + max)).toFixed(3)},
                             svg("title", null, b.count + " values in [2^" + b.exponent + ", 2^" + (b.exponent + 1) + ")")));
    });
  }

  // A marker for |v| (v: the module's text of a number): a triangle above y (kind "input") or
  // a diamond below it (kind "result"); arrows at the ends for values outside the axis.
  function drawMarker(g, range, X, y, valueText, kind) {
    var v = Math.abs(Number(valueText));
    if (!isFinite(v) || v === 0) return;
    var l = Math.log2(v), x = X(Math.min(range.hi, Math.max(range.lo, l)));
    var outside = l < range.lo ? "\u25c0 " : l > range.hi ? " \u25b6" : "";
    var label = (kind === "input" ? "|x| = " : "|result| = ") + valueText.replace(/^-/, "");
    var shape = kind === "input"
      ? svg("path", {d: "M" + x + " " + y + " l-6 -10 h12 z", class: "marker-input"})
      : svg("path", {d: "M" + x + " " + y + " l6 8 l-6 8 l-6 -8 z", class: "marker-result"});
    shape.appendChild(svg("title", null, label));
    g.appendChild(shape);
    if (outside) g.appendChild(svg("text", {x: x, y: kind === "input" ? y - 12 : y + 28,
                                            "text-anchor": l < range.lo ? "start" : "end", class: "axis-label"},
                                   outside.trim() + " outside"));
  }

  function setDrawing(node, width, height, label) {
    node.textContent = "";
    setAttrs(node, {width: width, height: height, viewBox: "0 0 " + width + " " + height, "aria-label": label});
  }

  function renderNumberLine(data, input, result) {
    var fmt = data.fmt, binades = data.binades, values = data.values;
    var node = $("number-line"), width = drawingWidth("line-box"), height = 112, range = axisRange([binades]);
    setDrawing(node, width, height, "the positive values of " + fmt.name + " from 2^" + range.lo + " to 2^" +
               range.hi + " on a log2 scale, with |x| = " + input.replace(/^-/, ""));
    var X = scale(range, 24, width - 24);
    drawBinadeLines(node, range, X, 22, 78, 98, width);
    drawValues(node, range, X, 40, 30, values, binades);
    drawMarker(node, range, X, 38, input, "input");
    drawMarker(node, range, X, 72, result, "result");
    node.appendChild(svg("text", {x: 4, y: 14, class: "caption"},
                         (values ? values.length + " positive values, one tick each"
                                 : "shaded by the number of values per binade") +
                         (Number(input) === 0 ? "; x = 0 has no place on a log scale" : "")));
  }

  function renderDensity(binades) {
    var node = $("density"), width = drawingWidth("density-box"), height = 130;
    setDrawing(node, width, height, "the number of values in each binade (bar chart)");
    var range = axisRange([binades]), X = scale(range, 24, width - 24);
    var max = Math.max.apply(null, binades.map(function (b) { return b.count; }));
    var top = 18, base = 100;
    node.appendChild(svg("line", {x1: X(range.lo), x2: X(range.hi), y1: base, y2: base, class: "axis"}));
    binades.forEach(function (b) {
      var x0 = X(b.exponent), w = Math.max(1, X(b.exponent + 1) - x0 - 1);
      var h = Math.max(1, (base - top) * b.count / max);
      var bar = svg("rect", {x: x0 + 0.5, y: base - h, width: w, height: h, "data-exponent": b.exponent,
                             "data-count": b.count, "data-subnormal": b.subnormal ? 1 : 0,
                             class: b.subnormal ? "bar subnormal" : "bar"},
                    svg("title", null, "[2^" + b.exponent + ", 2^" + (b.exponent + 1) + "): " + b.count +
                        " values, spacing " + b.spacing + (b.subnormal ? " (subnormal)" : "")));
      node.appendChild(bar);
      if (w >= 22) node.appendChild(svg("text", {x: x0 + w / 2, y: base - h - 3, "text-anchor": "middle",
                                                 class: "bar-label"}, String(b.count)));
    });
    drawBinadeLines(node, range, X, base, base + 4, base + 22, width);
  }

  function compareList() {
    return state.cmp.split(",").map(function (s) { return s.trim(); }).filter(function (s) { return s; });
  }

  function renderCompare(N, R, input) {
    var names = compareList();
    var body = $("compare-table").tBodies[0];
    body.textContent = "";
    var lanes = [];
    names.slice(0, MAX_COMPARE).forEach(function (name) {
      var e = call("explain", name, state.x, state.r, state.s, state.n, state.daz, state.ftz, N, R);
      if (failed(e)) {
        body.appendChild(el("tr", {"data-format": name}, el("th", {scope: "row", class: "format"}, name),
                            el("td", {class: "error", colspan: 5}, e.error)));
        return;
      }
      body.appendChild(el("tr", {"data-format": name}, el("th", {scope: "row", class: "format"}, name),
                          el("td", {class: "code"}, e.result.hex), el("td", {class: "bits"}, e.result.bits),
                          el("td", {class: "value"}, e.result.value), el("td", {class: "error-ulps"}, text(e.error_ulps)),
                          el("td", {class: "status"}, e.status)));
      var data = drawingData(name);
      lanes.push({name: name, binades: data.binades, values: data.values});
    });
    if (names.length > MAX_COMPARE)
      body.appendChild(el("tr", null, el("td", {colspan: 6, class: "note"},
                                         "at most " + MAX_COMPARE + " formats: the others are left out")));

    var node = $("compare-lines"), width = drawingWidth("compare-box"), lane = 58;
    var height = 30 + lane * lanes.length;
    setDrawing(node, width, height, "the formats' positive values on one log2 scale: " +
               lanes.map(function (l) { return l.name; }).join(", "));
    var range = axisRange(lanes.map(function (l) { return l.binades; })), X = scale(range, 24, width - 24);
    drawBinadeLines(node, range, X, 4, height - 26, height - 8, width);
    lanes.forEach(function (l, i) {
      var y = 4 + i * lane;
      node.appendChild(svg("text", {x: 4, y: y + 14, class: "lane-label"}, l.name));
      drawValues(node, range, X, y + 20, 22, l.values, l.binades);
      drawMarker(node, range, X, y + 19, input, "input");
    });
  }

  // The rows are built when the format or the page changes; then only the current code's mark moves.
  function renderCodes(fmt, currentCode) {
    var total = Math.pow(2, fmt.bits), pages = Math.ceil(total / PAGE_SIZE);
    state.p = Math.min(state.p, pages - 1);
    var body = $("codes").tBodies[0];
    if (state.f + "#" + state.p !== codesShown) {
      codesShown = state.f + "#" + state.p;
      var list = call("codes", state.f, state.p * PAGE_SIZE, PAGE_SIZE);
      body.textContent = "";
      list.forEach(function (c) {
        body.appendChild(el("tr", {"data-code": c.code, tabindex: -1},
                            el("td", {class: "code"}, String(c.code)), el("td", {class: "hex"}, c.hex),
                            el("td", {class: "bits"}, c.bits), el("td", {class: "class"}, c["class"]),
                            el("td", {class: "value"}, c.value), el("td", {class: "marker"})));
      });
      $("codes-wrap").scrollTop = 0;  // a new page starts at its top
      $("codes-page").textContent = "page " + (state.p + 1) + " of " + pages + " (codes " + list[0].hex +
                                    " to " + list[list.length - 1].hex + ")";
      $("codes-prev").disabled = state.p === 0;
      $("codes-next").disabled = state.p >= pages - 1;
    }
    Array.prototype.forEach.call(body.querySelectorAll("tr.current"), function (row) {
      row.classList.remove("current");
      row.removeAttribute("aria-current");
      row.querySelector(".marker").textContent = "";
    });
    var row = body.querySelector("tr[data-code=\"" + currentCode + "\"]");
    if (row) {
      row.classList.add("current");
      row.setAttribute("aria-current", "true");
      row.querySelector(".marker").textContent = "\u25c0 current";
    }
    rovingRow(row || body.rows[0]);
  }

  // One row of the code table is in the tab order (the current code's, else the first);
  // the arrow keys move between the rows.
  function rovingRow(row) {
    Array.prototype.forEach.call($("codes").tBodies[0].rows, function (r) { r.tabIndex = r === row ? 0 : -1; });
  }


  // A word of the command line, quoted for a POSIX shell when it needs it.
  function shellWord(w) {
    return /^[A-Za-z0-9._:+=,\-]+$/.test(w) ? w : "'" + w.replace(/'/g, "'\\''") + "'";
  }

  function renderCli(main, explanation) {
    var words = ["fp8emu", "explain", shellWord(state.f)];
    if (!explanation) {
      words.push("--code", main.hex);
    } else {
      var d = defaults(), rounding = byName(OPTIONS.rounding, state.r);
      words.push(shellWord(state.x));
      if (state.r !== d.r) words.push("--rounding", state.r);
      if (state.s !== d.s) words.push("--saturation", state.s);
      if (state.n !== d.n) words.push("--nan", state.n);
      if (state.daz) words.push("--daz");
      if (state.ftz) words.push("--ftz");
      if (rounding.stochastic && Number(state.N) !== rounding.default_bits) words.push("--sr-bits", state.N.trim());
      if (rounding.stochastic && Number(state.R) !== 0) words.push("--random", state.R.trim());
    }
    $("cli-command").textContent = words.join(" ");
    $("cli-text").textContent = main.text;
  }

  // ---- inputs -------------------------------------------------------------------------------

  function fillChoices(id, list) {
    var select = $(id);
    list.forEach(function (o) { select.appendChild(el("option", {value: o.name}, o.name + ": " + o.description)); });
  }

  function bindInputs() {
    function on(id, event, update) {
      $(id).addEventListener(event, function () { update($(id)); render(); });
    }
    on("format", "input", function (e) { state.f = e.value.trim(); state.c = null; state.p = 0; });
    on("value", "input", function (e) { state.x = e.value.trim(); state.c = null; });
    on("rounding", "change", function (e) { state.r = e.value; });
    on("saturation", "change", function (e) { state.s = e.value; });
    on("nan", "change", function (e) { state.n = e.value; });
    on("sr-bits", "input", function (e) { state.N = e.value; });
    on("random", "input", function (e) { state.R = e.value; });
    on("daz", "change", function (e) { state.daz = e.checked; });
    on("ftz", "change", function (e) { state.ftz = e.checked; });
    on("compare", "input", function (e) { state.cmp = e.value; });
    $("codes-prev").addEventListener("click", function () { state.p = Math.max(0, state.p - 1); render(); });
    $("codes-next").addEventListener("click", function () { state.p += 1; render(); });
    var codes = $("codes").tBodies[0];
    function choose(event) {
      var row = event.target.closest("tr[data-code]");
      if (!row) return;
      state.c = Number(row.dataset.code);
      render();
    }
    codes.addEventListener("click", choose);
    codes.addEventListener("keydown", function (event) {
      var row = event.target.closest("tr[data-code]");
      var next = row && (event.key === "ArrowDown" ? row.nextElementSibling : event.key === "ArrowUp" ? row.previousElementSibling : null);
      if (event.key === "Enter") choose(event);
      if (!next) return;
      event.preventDefault();
      rovingRow(next);
      next.focus();
    });
    window.addEventListener("hashchange", function () {
      if (location.hash === writtenHash) return;
      state = readHash();
      showInputs();
      render();
    });
    var resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(render, 150);
    });
  }

  function start(module) {
    M = module;
    OPTIONS = call("options");
    call("catalog").forEach(function (c) {
      $("format-list").appendChild(el("option", {value: c.name}, c.name + " (" + c.bits + " bits; " + c.source + ")"));
    });
    fillChoices("rounding", OPTIONS.rounding);
    fillChoices("saturation", OPTIONS.saturation);
    fillChoices("nan", OPTIONS.nan);
    state = readHash();
    showInputs();
    bindInputs();
    render();
    document.body.dataset.ready = "1";
  }

  if (typeof createFp8emu !== "function") {
    showError("format-error", "The WebAssembly module fp8emu_explorer.js was not found beside this page.");
    return;
  }
  createFp8emu().then(start, function (e) { showError("format-error", "The module failed to load: " + e); });
})();
