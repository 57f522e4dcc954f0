/**
 * A Chart.js chart (bar, line, or doughnut; stacked, horizontal, with a second axis) drawn in the browser from
 * plain-data props. The server renders the canvas and, beside it, the same numbers as a table (collapsed) so the
 * data is readable without JavaScript and by screen readers. Only the Chart.js pieces used here are registered,
 * which keeps the bundle small.
 */
import { useEffect, useRef } from "preact/hooks";
import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  DoughnutController,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";

Chart.register(
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  DoughnutController,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);

/** How values are shown on axes, tooltips and in the data table. */
export type ValueFormat = "number" | "usd" | "percent";

/** One series. */
export interface ChartSeries {
  label: string;
  data: number[];
  /** A CSS colour; for doughnuts, pass `colors` instead. */
  color?: string;
  /** Per-slice colours (doughnut). */
  colors?: string[];
  /** Draw this series as a line over bars (mixed chart). */
  type?: "bar" | "line";
  /** Plot against the right-hand axis. */
  axis?: "y" | "y2";
}

/** Props of {@link UsageChart}: plain data only. */
export interface UsageChartProps {
  kind: "bar" | "line" | "doughnut";
  /** Accessible name of the chart and caption of its data table. */
  title: string;
  labels: string[];
  series: ChartSeries[];
  stacked?: boolean;
  horizontal?: boolean;
  format?: ValueFormat;
  format2?: ValueFormat;
  /** Tailwind height of the drawing area. */
  size?: "sm" | "md" | "lg";
}

function formatValue(v: number, f: ValueFormat = "number"): string {
  if (!Number.isFinite(v)) return "–";
  if (f === "usd") {
    const abs = Math.abs(v);
    const digits = abs === 0 || abs >= 1 ? 2 : abs >= 0.01 ? 3 : 4;
    return `$${v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
  }
  if (f === "percent") return `${(v * 100).toFixed(v === 0 ? 0 : 1)}%`;
  return Math.abs(v) >= 1000
    ? v.toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 1 })
    : v.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

function shorten(label: string, max: number): string {
  return label.length > max ? `${label.slice(0, max - 1)}…` : label;
}

const HEIGHTS = { sm: "h-48", md: "h-64", lg: "h-80" } as const;
const GRID = "rgba(148, 163, 184, 0.25)";
const TICKS = "#64748b";

function config(p: UsageChartProps): ChartConfiguration {
  const doughnut = p.kind === "doughnut";
  const valueAxis = p.horizontal ? "x" : "y";
  const datasets = p.series.map((s) => {
    const type = s.type ?? (p.kind === "doughnut" ? "doughnut" : p.kind);
    const line = type === "line";
    return {
      type,
      label: s.label,
      data: s.data,
      backgroundColor: s.colors ?? (line ? s.color + "33" : s.color),
      borderColor: doughnut ? "#ffffff" : s.color,
      borderWidth: doughnut ? 2 : line ? 2 : 0,
      borderRadius: line || doughnut ? 0 : 3,
      pointRadius: line ? (s.data.length > 48 ? 0 : 2) : undefined,
      tension: 0.3,
      cubicInterpolationMode: "monotone",
      fill: line && p.kind === "line",
      yAxisID: !doughnut && !p.horizontal ? (s.axis === "y2" ? "y2" : "y") : undefined,
      order: line ? 0 : 1,
      maxBarThickness: 36,
    };
  });
  const fmtFor = (axis?: string) => (axis === "y2" ? p.format2 : p.format);
  const scales: Record<string, unknown> = doughnut ? {} : {
    x: {
      stacked: p.stacked,
      grid: { display: !!p.horizontal, color: GRID },
      ticks: {
        color: TICKS,
        maxRotation: 0,
        autoSkip: true,
        autoSkipPadding: 12,
        ...(valueAxis === "x" ? { callback: (v: number | string) => formatValue(Number(v), p.format) } : {}),
      },
      beginAtZero: valueAxis === "x",
    },
    y: {
      stacked: p.stacked,
      beginAtZero: true,
      grid: { display: !p.horizontal, color: GRID },
      ticks: {
        color: TICKS,
        ...(valueAxis === "y" ? { callback: (v: number | string) => formatValue(Number(v), p.format) } : {}),
        ...(valueAxis === "y" && (p.format ?? "number") === "number" ? { precision: 0 } : {}),
        // Category labels of horizontal bars (model names, emails) are shortened; tooltips show them whole.
        ...(valueAxis === "x"
          ? { callback: (_v: number | string, i: number) => shorten(p.labels[i] ?? "", 22) }
          : {}),
      },
    },
    ...(p.series.some((s) => s.axis === "y2")
      ? {
        y2: {
          position: "right",
          beginAtZero: true,
          grid: { display: false },
          ticks: { color: TICKS, callback: (v: number | string) => formatValue(Number(v), p.format2) },
          ...(p.format2 === "percent" ? { suggestedMax: 0.1 } : {}),
        },
      }
      : {}),
  };
  return {
    type: doughnut ? "doughnut" : "bar",
    data: { labels: p.labels, datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      indexAxis: p.horizontal ? "y" : "x",
      // No animation: numbers appear at once, resizing does not replay it, and screenshots are stable.
      animation: false,
      interaction: { mode: doughnut ? "nearest" : "index", intersect: false },
      plugins: {
        legend: {
          display: doughnut || p.series.length > 1,
          position: doughnut ? "right" : "bottom",
          labels: {
            boxWidth: 12,
            boxHeight: 12,
            color: "#334155",
            // In series order, not drawing order (lines are drawn over bars).
            sort: (
              a: { datasetIndex?: number; index?: number },
              b: { datasetIndex?: number; index?: number },
            ) => (a.datasetIndex ?? a.index ?? 0) - (b.datasetIndex ?? b.index ?? 0),
          },
        },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const axis = (ctx.dataset as { yAxisID?: string }).yAxisID;
              const value = ctx.parsed && typeof ctx.parsed === "object"
                ? (p.horizontal ? (ctx.parsed as { x: number }).x : (ctx.parsed as { y: number }).y)
                : Number(ctx.raw);
              const label = doughnut ? ctx.label : ctx.dataset.label;
              return `${label}: ${formatValue(Number(doughnut ? ctx.raw : value), fmtFor(axis))}`;
            },
          },
        },
      },
      scales,
    } as ChartConfiguration["options"],
  } as ChartConfiguration;
}

/** A chart island; see the module documentation. */
export function UsageChart(props: UsageChartProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, config(props));
    // For tests and debugging: how many points were drawn.
    canvas.current.dataset.points = String(props.series.reduce((n, s) => n + s.data.length, 0));
    return () => chart.destroy();
  }, [JSON.stringify(props)]);

  const height = HEIGHTS[props.size ?? "md"];
  return (
    <figure class="min-w-0">
      <div class={`relative ${height} w-full`}>
        <canvas ref={canvas} role="img" aria-label={props.title} data-chart={props.kind} />
      </div>
      <details class="mt-2 text-xs text-slate-500">
        <summary class="cursor-pointer select-none hover:text-slate-700">Data</summary>
        <div class="mt-2 max-h-64 overflow-auto">
          <table class="w-full text-left tabular-nums">
            <caption class="sr-only">{props.title}</caption>
            <thead>
              <tr class="border-b border-slate-200">
                <th class="py-1 pr-3 font-medium" scope="col"></th>
                {props.series.map((s, i) => (
                  <th key={i} class="py-1 pr-3 font-medium" scope="col">{s.label}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {props.labels.map((label, i) => (
                <tr class="border-b border-slate-100">
                  <th class="py-1 pr-3 font-normal" scope="row">{label}</th>
                  {props.series.map((s) => (
                    <td class="py-1 pr-3">
                      {formatValue(s.data[i] ?? 0, s.axis === "y2" ? props.format2 : props.format)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
