/**
 * A "Copy" button for a value shown on the page (an access key, the `ANTHROPIC_BASE_URL=…` line). Without
 * JavaScript the button stays hidden and the value can be selected by hand; hydrated, it appears and copies.
 */
import { useEffect, useState } from "preact/hooks";

/** Props of {@link CopyButton}. */
export interface CopyButtonProps {
  /** The exact text to put on the clipboard. */
  text: string;
  /** Button caption; default "Copy". */
  label?: string;
}

async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (insecure context) or permission denied: the selection fallback.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "fixed -left-[9999px] top-0";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/** A copy-to-clipboard button; see the module documentation. */
export function CopyButton({ text, label = "Copy" }: CopyButtonProps) {
  const [ready, setReady] = useState(false);
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => setReady(true), []);
  useEffect(() => {
    if (state === "idle") return;
    const t = setTimeout(() => setState("idle"), 2000);
    return () => clearTimeout(t);
  }, [state]);
  return (
    <button
      type="button"
      class="btn btn-secondary shrink-0"
      hidden={!ready}
      data-copy-text={text}
      onClick={async () => setState((await copy(text)) ? "copied" : "failed")}
      aria-live="polite"
    >
      {state === "copied" ? "Copied ✓" : state === "failed" ? "Copy failed: select and copy" : label}
    </button>
  );
}
