/**
 * The submit button of a destructive form (delete a user, revoke a key, remove credentials), placed inside a
 * `<form method="post">`. Without JavaScript it renders a required "I understand…" checkbox next to the button,
 * so the browser refuses to submit until it is ticked (and the server refuses a submission without
 * `confirm=yes`). Hydrated, the checkbox gives way to a modal dialog that asks before submitting.
 */
import { useEffect, useId, useRef, useState } from "preact/hooks";

/** Props of {@link ConfirmDialog}. */
export interface ConfirmDialogProps {
  /** The button's caption, e.g. "Delete user". */
  label: string;
  /** The dialog's heading. */
  title: string;
  /** What will happen, in a sentence or two. */
  message: string;
  /** The dialog's confirm button caption; default: `label`. */
  confirmLabel?: string;
  /** The no-JavaScript checkbox's text, e.g. "I understand that this revokes every key". */
  checkboxLabel: string;
}

/** A confirmation step for a destructive form; see the module documentation. */
export function ConfirmDialog(props: ConfirmDialogProps) {
  const [ready, setReady] = useState(false);
  const dialog = useRef<HTMLDialogElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const titleId = useId();
  useEffect(() => setReady(true), []);

  if (!ready) {
    return (
      <div class="flex flex-wrap items-center gap-3">
        <label class="flex items-center gap-2 text-sm text-slate-700">
          <input type="checkbox" name="confirm" value="yes" required class="size-4 accent-rose-600" />
          {props.checkboxLabel}
        </label>
        <button type="submit" class="btn btn-danger">{props.label}</button>
      </div>
    );
  }
  return (
    <div class="flex flex-wrap items-center gap-3">
      <input type="hidden" name="confirm" value="yes" />
      <button ref={button} type="button" class="btn btn-danger" onClick={() => dialog.current?.showModal()}>
        {props.label}
      </button>
      <dialog
        ref={dialog}
        class="m-auto w-[min(28rem,calc(100vw-2rem))] rounded-xl p-0 shadow-xl backdrop:bg-slate-900/50"
        aria-labelledby={titleId}
        data-confirm-dialog
      >
        <div class="p-5">
          <h2 id={titleId} class="text-base font-semibold text-slate-900">{props.title}</h2>
          <p class="mt-2 text-sm text-slate-600">{props.message}</p>
          <div class="mt-5 flex justify-end gap-2">
            <button type="button" class="btn btn-secondary" onClick={() => dialog.current?.close()} autofocus>
              Cancel
            </button>
            <button
              type="button"
              class="btn btn-danger"
              data-confirm
              onClick={() => {
                dialog.current?.close();
                button.current?.form?.requestSubmit();
              }}
            >
              {props.confirmLabel ?? props.label}
            </button>
          </div>
        </div>
      </dialog>
    </div>
  );
}
