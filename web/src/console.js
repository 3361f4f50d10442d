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

function draw(el) {
  const block = document.getElementById(el.dataset.option);
  if (!block) return;
  const option = JSON.parse(block.textContent);
  // Tooltips drawn on the canvas (richText): HTML tooltips carry inline styles, which the
  // console's Content-Security-Policy refuses.
  option.tooltip = Object.assign({ renderMode: "richText", confine: true }, option.tooltip || {});
  option.animation = false;
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
