/**
 * Small coloured labels for statuses (user active, key status, provider, circuit state, HTTP status).
 */
import type { ComponentChildren } from "preact";

/** Badge colours. */
export type Tone = "green" | "gray" | "red" | "amber" | "blue" | "violet";

const TONES: Record<Tone, string> = {
  green: "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
  gray: "bg-slate-100 text-slate-600 ring-slate-500/20",
  red: "bg-rose-50 text-rose-700 ring-rose-600/20",
  amber: "bg-amber-50 text-amber-800 ring-amber-600/20",
  blue: "bg-sky-50 text-sky-700 ring-sky-600/20",
  violet: "bg-violet-50 text-violet-700 ring-violet-600/20",
};

/** A coloured label. */
export function Badge(
  { tone, children, title }: { tone: Tone; children: ComponentChildren; title?: string },
) {
  return (
    <span
      title={title}
      class={`inline-flex items-center whitespace-nowrap rounded-md px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${
        TONES[tone]
      }`}
    >
      {children}
    </span>
  );
}

const KEY_TONES: Record<string, Tone> = {
  active: "green",
  rotating: "amber",
  expired: "gray",
  revoked: "red",
};
/** An access key's status. */
export function KeyStatusBadge({ status }: { status: string }) {
  return <Badge tone={KEY_TONES[status] ?? "gray"}>{status}</Badge>;
}

/** A user's status. */
export function UserStatusBadge({ active }: { active: boolean }) {
  return <Badge tone={active ? "green" : "gray"}>{active ? "active" : "inactive"}</Badge>;
}

/** Which upstream answered. */
export function ProviderBadge({ provider }: { provider: string }) {
  return <Badge tone={provider === "bedrock" ? "violet" : "blue"}>{provider}</Badge>;
}

const CIRCUIT_TONES: Record<string, Tone> = { closed: "green", open: "red", half_open: "amber" };
/** A circuit breaker's state. */
export function CircuitBadge({ state }: { state: string }) {
  return <Badge tone={CIRCUIT_TONES[state] ?? "gray"}>{state.replace("_", "-")}</Badge>;
}
