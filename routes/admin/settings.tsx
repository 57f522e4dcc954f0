/**
 * `GET /admin/settings`: the running configuration (read-only, secrets masked), the model map (built-in table
 * plus `PROXY_BEDROCK_MODEL_MAP` overrides) and the price table in effect.
 */
import type { Hono } from "hono";
import { describeConfig } from "../../lib/config.ts";
import { ALIASES, DATED, mapModel } from "../../lib/proxy/bedrock/model_map.ts";
import { Layout, PageHeader } from "../../components/Layout.tsx";
import { Card } from "../../components/Card.tsx";
import { Badge } from "../../components/Badge.tsx";
import { Table } from "../../components/Table.tsx";
import { type AdminDeps, type AdminEnv, render, sessionView } from "./shared.tsx";

function usd(n: number): string {
  return `$${n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 4 })}`;
}

/** Registers the settings page. */
export function settingsRoutes(admin: Hono<AdminEnv>, deps: AdminDeps): void {
  admin.get("/settings", (c) => {
    const config = deps.config;
    const overrides = config.bedrockModelMap;
    const opts = { overrides, defaultModel: config.bedrockDefaultModel };
    // The undated names Claude Code asks for (its `sonnet`, `opus` aliases) first, then the dated ids.
    const modelRows: Array<[string, string, boolean]> = [
      ...Object.keys(overrides).map((name) => [name, overrides[name], true] as [string, string, boolean]),
      ...[...Object.keys(ALIASES), ...Object.keys(DATED)].filter((name) => !Object.hasOwn(overrides, name))
        .map((
          name,
        ) => [name, mapModel(name, opts).modelId, false] as [string, string, boolean]),
    ];
    const prices = deps.services.prices.entries();

    return render(
      c,
      <Layout title="Settings" section="settings" session={sessionView(c)} timeZone={config.timezone}>
        <PageHeader
          title="Settings"
          subtitle="Read-only: the configuration comes from PROXY_* environment variables, read at start."
        />
        <div class="grid grid-cols-1 gap-6 xl:grid-cols-2">
          <Card title="Configuration" id="config">
            <Table head={["Variable", "Value"]} caption="Configuration">
              {describeConfig(config).map(([name, value]) => (
                <tr>
                  <td class="whitespace-nowrap font-mono text-xs">{name}</td>
                  <td class="break-all">{value}</td>
                </tr>
              ))}
            </Table>
          </Card>
          <div class="min-w-0 space-y-6">
            <Card title="Model map" id="model-map">
              <p class="mb-3 text-sm text-slate-600">
                Where a request falls back to Bedrock, the requested model becomes this Bedrock model id. An
                undated name the table does not know yet (<code>claude-sonnet-9</code>) is tried as{" "}
                <code>anthropic.&lt;name&gt;</code>, then on the default model if Bedrock refuses it; other
                unknown names use{" "}
                <code class="break-all">{config.bedrockDefaultModel}</code>. Overrides come from{" "}
                <code>PROXY_BEDROCK_MODEL_MAP</code>.
              </p>
              <Table head={["Requested model", "Bedrock model id", ""]} caption="Model map">
                {modelRows.map(([name, id, override]) => (
                  <tr>
                    <td class="whitespace-nowrap font-mono text-xs">{name}</td>
                    <td class="font-mono text-xs break-all">{id}</td>
                    <td>{override && <Badge tone="violet">override</Badge>}</td>
                  </tr>
                ))}
              </Table>
            </Card>
            <Card title="Prices (USD per million tokens)" id="prices">
              <Table
                head={["Model", ["Input", "right"], ["Output", "right"], ["Cache write", "right"], [
                  "Cache read",
                  "right",
                ]]}
                caption="Prices"
              >
                {prices.map(([model, p]) => (
                  <tr>
                    <td class="font-mono text-xs">{model}</td>
                    <td class="text-right tabular-nums">{usd(p.input)}</td>
                    <td class="text-right tabular-nums">{usd(p.output)}</td>
                    <td class="text-right tabular-nums">{usd(p.cacheWrite)}</td>
                    <td class="text-right tabular-nums">{usd(p.cacheRead)}</td>
                  </tr>
                ))}
              </Table>
              <p class="mt-3 text-xs text-slate-500">
                Override with{" "}
                <code>PROXY_MODEL_PRICING</code>. Requests for unpriced models are recorded without a cost.
              </p>
            </Card>
          </div>
        </div>
      </Layout>,
    );
  });
}
