// Drives the web console in Debian's headless Chromium with playwright-core:
// a wrong password shows the API's message; then log in, deploy a wasm sample with
// the deploy form, invoke it, and wait for `completed` and its result; a screenshot
// is kept. Run by tests/console.rs:
//   node console.test.mjs BASE_URL USER PASSWORD WASM_FILE SCREENSHOT_PNG
import { chromium } from "playwright-core";

const [base, user, password, wasm, screenshot] = process.argv.slice(2);
const step = (what) => console.log(`[console] ${what}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const failures = [];
try {
  const page = await browser.newPage();
  // A refused login answers 401 by design: statuses are checked below, not console noise.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) failures.push(`browser console: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 500 || r.status() === 404) failures.push(`${r.status()} for ${r.url()}`);
  });
  page.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
  page.on("request", (r) => { if (!r.url().startsWith(base)) failures.push(`request to another host: ${r.url()}`); });
  await page.goto(base + "/");

  step("a wrong password shows the API's message");
  await page.getByTestId("login-username").fill(user);
  await page.getByTestId("login-password").fill(password + "-wrong");
  await page.getByTestId("login-submit").click();
  await page.getByTestId("login-error").filter({ hasText: /invalid|password|credentials/i }).waitFor({ timeout: 10000 });
  const shown = await page.getByTestId("login-error").textContent();
  step(`shown: ${shown}`);

  step("log in");
  await page.getByTestId("login-password").fill(password);
  await page.getByTestId("login-submit").click();
  await page.getByTestId("deploy-name").waitFor({ timeout: 10000 });
  const token = await page.evaluate(() => sessionStorage.getItem("faas-console-token"));
  if (!token) failures.push("no token in the session after logging in");
  if (page.url().includes(token)) failures.push("the token is in the URL");

  step("deploy a sample");
  await page.getByTestId("deploy-name").fill("console-hello");
  await page.getByTestId("deploy-file").setInputFiles(wasm);
  await page.getByTestId("deploy-submit").click();
  const row = page.getByTestId("function-row").filter({ hasText: "console-hello" });
  await row.waitFor({ timeout: 30000 });
  await row.click();

  step("invoke it");
  await page.getByTestId("invoke-input").fill('{"direct_inputs": {"from": "the console"}}');
  await page.getByTestId("invoke-submit").click();
  await page.getByTestId("execution-status").filter({ hasText: /^completed$/ }).waitFor({ timeout: 30000 });
  const result = await page.getByTestId("execution-result").textContent();
  step(`result: ${result}`);
  if (!result.includes("the console")) failures.push(`the result does not echo the input: ${result}`);

  step("the executions tab lists it");
  await page.getByRole("button", { name: "Executions" }).click();
  await page.getByTestId("execution-row").first().waitFor({ timeout: 10000 });
  await page.screenshot({ path: screenshot, fullPage: true });
  step(`screenshot: ${screenshot}`);
} catch (e) {
  failures.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
step("ok");
