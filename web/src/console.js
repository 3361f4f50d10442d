// The console's only script: draws every chart on the page from its JSON data block
// (<div class="chart" data-option="ID"> + <script type="application/json" id="ID">), so
// the pages need no inline script and the CSP can forbid it. Only the ECharts parts the
// console uses are imported, to keep the bundle small.
import * as echarts from "echarts/core";
import { BarChart, FunnelChart, HeatmapChart, LineChart, PieChart } from "echarts/charts";
import {
  DatasetComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  MarkPointComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
} from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([
  BarChart,
  FunnelChart,
  HeatmapChart,
  LineChart,
  PieChart,
  DatasetComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  MarkPointComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
  CanvasRenderer,
]);

const charts = [];

// Named value formatters. ECharts takes a tooltip's `valueFormatter` only as a function,
// which a JSON block cannot carry: the options name one ("cny") and draw() swaps in the
// function. Money is yuan as the tables write it (¥12,345.67); "pct" is for values already
// in percent. Exposed (read-only) so the browser tests check what a tooltip will say.
const grouped = (digits) =>
  new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const [CNY, INT, PCT] = [grouped(2), grouped(0), grouped(1)];
const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
const FORMATS = Object.freeze({
  cny: (v) => (isNumber(v) ? (v < 0 ? "-¥" : "¥") + CNY.format(Math.abs(v)) : "-"),
  int: (v) => (isNumber(v) ? INT.format(v) : "-"),
  pct: (v) => (isNumber(v) ? PCT.format(v) + "%" : "-"),
});
window.siyuFormat = FORMATS;

function named(node) {
  if (Array.isArray(node)) node.forEach(named);
  else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "valueFormatter" && typeof value === "string") {
        node[key] = FORMATS[value] || String;
      } else named(value);
    }
  }
}

function draw(el) {
  const block = document.getElementById(el.dataset.option);
  if (!block) return;
  const option = JSON.parse(block.textContent);
  // Tooltips drawn on the canvas (richText): HTML tooltips carry inline styles, which the
  // console's Content-Security-Policy refuses.
  option.tooltip = Object.assign({ renderMode: "richText", confine: true }, option.tooltip || {});
  option.animation = false;
  named(option);
  const chart = echarts.init(el, null, { renderer: "canvas" });
  chart.setOption(option);
  el.dataset.drawn = "1";
  charts.push(chart);
}

function start() {
  document.querySelectorAll(".chart[data-option]").forEach(draw);
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => charts.forEach((c) => c.resize()), 100);
  });
  const toggle = document.querySelector(".nav-toggle");
  const nav = document.querySelector("nav.side");
  if (toggle && nav) {
    toggle.addEventListener("click", () => {
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  });
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
