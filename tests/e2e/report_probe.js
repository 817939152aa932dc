// Inserted by report_page_test.sh into a copy of a report page, before </body>, so
// what it measures does not depend on the page's own self-check: it asks the DOM
// and the layout what an on-call engineer would see, then writes one JSON object
// into a pre element (id cronrun-probe) for `chromium --dump-dom` to carry out.
// window.cronrunProbeJobs names the jobs to look up (set by the test).
(function () {
  var out = { errors: [], jobs: {}, links: {}, flags: [], charts: [], badges: {} };
  window.addEventListener('error', function (e) { out.errors.push(String(e.message)); });
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  // Inside a closed <details> an element keeps its boxes (content-visibility:
  // hidden) but shows nothing: checkVisibility() tells.
  function visible(el) {
    return !!el && el.getClientRects().length > 0 && (!el.checkVisibility || el.checkVisibility());
  }
  function go(hash) { location.hash = hash; return sleep(60); }

  // The first table's row that names the job (its own cell, not a substring).
  function jobRow(name) {
    var table = document.querySelector('table');
    if (!table) return null;
    var rows = table.querySelectorAll('tbody tr');
    for (var i = 0; i < rows.length; i++) {
      var cells = rows[i].querySelectorAll('td, td *');
      for (var k = 0; k < cells.length; k++)
        if (cells[k].childNodes.length && cells[k].firstChild.nodeType === 3 &&
            cells[k].firstChild.nodeValue.trim() === name) return rows[i];
    }
    return null;
  }
  function hashLinks(root) {
    return Array.prototype.slice.call(root.querySelectorAll('a[href^="#"]')).map(function (a) {
      return decodeURIComponent(a.getAttribute('href').slice(1));
    });
  }
  // Breadth-first over in-page links from a job's row, two hops at most: which
  // targets show, once navigated to, the given text.
  async function reach(name, text) {
    var row = jobRow(name);
    if (!row) return { row: false };
    var frontier = hashLinks(row), seen = {}, found = null;
    for (var depth = 0; depth < 2 && !found && frontier.length; depth++) {
      var next = [];
      for (var i = 0; i < frontier.length && !found; i++) {
        var id = frontier[i];
        if (seen[id]) continue;
        seen[id] = true;
        var el = document.getElementById(id);
        if (!el) continue;
        await go(id);
        if (visible(el) && el.innerText.indexOf(text) >= 0) found = { id: id, depth: depth + 1 };
        else next = next.concat(hashLinks(el));
      }
      frontier = next;
    }
    return { row: true, found: found };
  }

  async function probe() {
    await sleep(300);
    var root = document.documentElement;
    out.viewport = window.innerWidth;
    out.page_width = root.scrollWidth;
    // Boxes whose content is wider than the box (cut off or scrolled away).
    out.clipped = [];
    document.querySelectorAll('body *').forEach(function (e) {
      var ox = getComputedStyle(e).overflowX;
      if ((ox === 'auto' || ox === 'scroll' || ox === 'hidden') && visible(e) && e.scrollWidth > e.clientWidth + 1)
        out.clipped.push(e.tagName.toLowerCase() + '.' + e.className + ' ' + e.scrollWidth + '>' + e.clientWidth);
    });
    // Which of the named jobs the first table lists, in its order.
    var firstTable = document.querySelector('table');
    out.row_order = [];
    if (firstTable) firstTable.querySelectorAll('tbody tr').forEach(function (tr) {
      (window.cronrunProbeJobs || []).forEach(function (name) { if (jobRow(name) === tr) out.row_order.push(name); });
    });
    (window.cronrunProbeJobs || []).forEach(function (name) {
      var row = jobRow(name);
      out.jobs[name] = row ? row.innerText.replace(/\s+/g, ' ').trim() : null;
    });
    // A week heat-map: the cells of a table whose header runs 00..23.
    out.heat = null;
    document.querySelectorAll('table').forEach(function (t) {
      var head = Array.prototype.map.call(t.querySelectorAll('thead th'), function (th) { return th.innerText.trim(); });
      if (head.indexOf('00') < 0 || head.indexOf('23') < 0) return;
      out.heat = Array.prototype.map.call(t.querySelectorAll('tbody td'), function (td) { return td.innerText.trim(); });
    });
    // How "ok" and "skipped" look where the page shows a run's status.
    ['ok', 'skipped'].forEach(function (word) {
      var styles = {};
      document.querySelectorAll('td, td *').forEach(function (e) {
        if (e.children.length === 0 && e.textContent.trim() === word) {
          var cs = getComputedStyle(e);
          styles[cs.color + '|' + cs.backgroundColor + '|' + cs.borderStyle] = 1;
        }
      });
      out.badges[word] = Object.keys(styles);
    });
    // Suggested limits: every element whose whole text is cronrun flags, and what a
    // reader copying it would get.
    document.querySelectorAll('body *').forEach(function (e) {
      var t = e.textContent;
      if (!/^\s*--(memory|cpu|timeout)\b/.test(t)) return;
      if (e.parentElement && /^\s*--(memory|cpu|timeout)\b/.test(e.parentElement.textContent)) return;
      var range = document.createRange();
      range.selectNodeContents(e);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      // Headless Chromium may hand back an empty selection (no focused window);
      // the rendered text is then what a copy would carry.
      out.flags.push({ text: t, copied: sel.toString() || e.innerText, visible: visible(e) });
      sel.removeAllRanges();
    });
    // Every in-page link lands on an element.
    var all = hashLinks(document), missing = [];
    all.forEach(function (id) { if (id !== 'expand-all' && !document.getElementById(id)) missing.push(id); });
    out.links = { count: all.length, missing: missing };
    // Filter by state: press the control labelled "failing", see which jobs' rows
    // are still shown.
    out.filter = null;
    var buttons = document.querySelectorAll('button');
    for (var b = 0; b < buttons.length; b++) {
      if (!/^failing\b/.test(buttons[b].innerText.trim()) || !visible(buttons[b])) continue;
      buttons[b].click();
      await sleep(50);
      out.filter = (window.cronrunProbeJobs || []).filter(function (name) { return visible(jobRow(name)); });
      var showAll = document.querySelector('button[data-filter="all"]') || buttons[0];
      showAll.click();
      await sleep(50);
      break;
    }
    out.reach = {};
    var want = window.cronrunProbeReach || {};
    for (var name in want) out.reach[name] = await reach(name, want[name]);
    out.xss = typeof window.cronrunPwned !== 'undefined';
    // Open everything, then read the charts Chart.js holds.
    document.querySelectorAll('details').forEach(function (d) { d.open = true; });
    await sleep(500);
    if (typeof Chart !== 'undefined') {
      Object.keys(Chart.instances).forEach(function (k) {
        var c = Chart.instances[k], x = c.scales.x;
        var labels = x.ticks.map(function (t) { return String(t.label); });
        out.charts.push({
          id: c.canvas.id,
          job: (c.canvas.getAttribute('aria-label') || ''),
          x_type: x.type,
          x_min: x.min, x_max: x.max,
          tick_labels: labels,
          datasets: c.data.datasets.map(function (d, i) {
            return { label: d.label, points: c.getDatasetMeta(i).data.filter(function (p) {
              return isFinite(p.x) && isFinite(p.y); }).length };
          })
        });
      });
    }
    out.errors = out.errors.concat(window.cronrunErrors || []);
    var pre = document.createElement('pre');
    pre.id = 'cronrun-probe';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  window.addEventListener('load', function () {
    probe().catch(function (e) {
      var pre = document.createElement('pre');
      pre.id = 'cronrun-probe';
      pre.textContent = JSON.stringify({ probe_failed: String(e) });
      document.body.appendChild(pre);
    });
  });
})();
