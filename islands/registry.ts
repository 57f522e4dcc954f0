/**
 * Every island by name. The server's `<Island name=…>` and the browser's hydration read this one object, so a
 * name is either known to both or to neither. A test checks that every component file in `islands/` is here.
 */
import type { IslandRegistry } from "../lib/islands/island.tsx";
import { ConfirmDialog } from "./ConfirmDialog.tsx";
import { CopyButton } from "./CopyButton.tsx";
import { RangePicker } from "./RangePicker.tsx";
import { UsageChart } from "./UsageChart.tsx";

/** Island components by the name used in `<Island name=…>`, equal to their file and export names. */
export const registry = { ConfirmDialog, CopyButton, RangePicker, UsageChart } satisfies IslandRegistry;
