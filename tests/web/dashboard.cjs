// dashboard.cjs - drives augurd's dashboard in headless Chromium (Debian's /usr/bin/chromium)
// with playwright-core, against a daemon that tests/integration/test_dashboard.py started and
// filled. Usage: node tests/web/dashboard.cjs BASE_URL SCREENSHOT_DIR FIRST_TS INTERVAL_S LAST_TS
// Checks: a query draws the number of points the written samples give (5-minute lookback), the
// table view and a syntax error with its position, the anomaly view lists the injected anomaly
// and charts it, the scaling and status views render; any console error or failed request
// fails the run. Writes a screenshot per view. Exit 0 = pass.
"use strict";
const path = require("path");
const fs = require("fs");
const repo = path.resolve(__dirname, "..", "..");
const { chromium } = require(path.join(repo, "web", "node_modules", "playwright-core"));

const [base, shots, firstTs, intervalS, lastTs] = process.argv.slice(2);
const problems = [];
function check(cond, msg) { if (!cond) problems.push(msg); }

(async () => {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  let expectBad = false;
  page.on("console", m => {
    // the deliberate syntax error's 400 is logged by Chromium as a failed resource load
    if (m.type() === "error" && !(expectBad && /status of 400/.test(m.text())))
      problems.push("console error: " + m.text());
  });
  page.on("pageerror", e => problems.push("page error: " + e.message));
  page.on("requestfailed", r => problems.push("request failed: " + r.url() + " " + (r.failure() || {}).errorText));
  page.on("response", r => {
    if (r.status() >= 400 && !(expectBad && r.url().includes("/api/v1/query_range")))
      problems.push("HTTP " + r.status() + " for " + r.url());
  });
  try {
    // Explore: graph
    await page.goto(base + "/#explore");
    await page.fill("#query", "demo_requests");
    await page.click("#run");
    await page.waitForSelector("#explore-chart[data-points]", { timeout: 20000 });
    const d = await page.$eval("#explore-chart", e => Object.assign({}, e.dataset));
    const start = Number(d.start), end = Number(d.end), step = Number(d.step);
    let want = 0;
    for (let t = start; t <= end; t += step) {
      // a sample at first + k*interval within (t - 300, t]
      const k = Math.floor((t - Number(firstTs)) / Number(intervalS));
      const s = Number(firstTs) + k * Number(intervalS);
      if (k >= 0 && s <= Number(lastTs) && s > t - 300) want++;
    }
    check(Number(d.points) === want && want > 100,
          "explore chart draws " + d.points + " points, the samples give " + want);
    check(Number(d.series) === 1, "explore chart has " + d.series + " series");
    check(await page.$eval("#explore-chart canvas", c => c.width > 0), "no chart canvas");
    await page.screenshot({ path: path.join(shots, "explore.png"), fullPage: true });
    // Explore: table
    await page.click("text=Table");
    await page.waitForSelector("#explore-table[data-rows]", { timeout: 10000 });
    check(await page.$eval("#explore-table", e => e.dataset.rows) === "1", "table rows");
    await page.click("text=Graph");
    // Explore: an error shown where it occurred
    expectBad = true;
    await page.fill("#query", "sum(rate(demo_requests[5m])");
    await page.click("#run");
    await page.waitForSelector("#query-error .caret", { timeout: 10000 });
    const errText = await page.$eval("#query-error", e => e.textContent);
    check(/parse error/.test(errText), "error text: " + errText);
    // a good query again (the page remembers the last one)
    await page.fill("#query", "demo_requests");
    await page.click("#run");
    await page.waitForFunction(() => !document.querySelector("#query-error").textContent, null,
                               { timeout: 10000 });
    await page.waitForTimeout(200);
    expectBad = false;
    // Anomalies
    await page.goto(base + "/#anomalies");
    await page.waitForSelector(".anomaly-row", { timeout: 20000 });
    const rows = await page.$$eval(".anomaly-row", rs => rs.map(r => r.textContent));
    check(rows.some(t => t.includes("demo_latency") && t.includes('job="web"')),
          "the injected anomaly is not listed: " + rows.slice(0, 5).join(" | "));
    await page.waitForSelector(".anomaly-chart[data-points]", { timeout: 20000 });
    const pts = await page.$$eval(".anomaly-chart", cs => cs.map(c => Number(c.dataset.points || 0)));
    check(pts.some(p => p > 0), "anomaly charts draw nothing");
    await page.screenshot({ path: path.join(shots, "anomalies.png"), fullPage: true });
    // Scaling
    await page.goto(base + "/#scaling");
    await page.waitForSelector(".scaler .chart[data-points]", { timeout: 20000 });
    await page.screenshot({ path: path.join(shots, "scaling.png"), fullPage: true });
    // Status
    await page.goto(base + "/#status");
    await page.waitForFunction(() => document.querySelector("#status-config") &&
      document.querySelector("#status-config").textContent.includes("listen_address"), null, { timeout: 20000 });
    check(await page.$$eval("#status-stats .stat", s => s.length) >= 6, "status stats");
    await page.screenshot({ path: path.join(shots, "status.png"), fullPage: true });
    // A phone-sized screen still renders the views
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(base + "/#explore");
    await page.waitForSelector("#query", { timeout: 10000 });
    await page.screenshot({ path: path.join(shots, "explore-phone.png") });
  } catch (e) {
    problems.push("exception: " + e.message);
  }
  await browser.close();
  if (problems.length) {
    console.log("FAIL\n  " + problems.join("\n  "));
    process.exit(1);
  }
  console.log("PASS dashboard: explore (graph, table, error), anomalies, scaling, status");
})();
