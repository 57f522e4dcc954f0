/**
 * Browser behaviour of every console page that is not an island: a form is sent once, and a flash notice
 * (`?ok=…`) is said once.
 *
 * A double click on "Rotate key" sent the rotation twice: the first answer (the new key's secret, shown once)
 * was dropped by the browser for the second, a 409, so the secret was never seen. "Issue access key" made two
 * keys and "Create user" reported its own success as a conflict. Browsers do not guard this themselves.
 *
 * @example
 * ```ts
 * guardSubmissions(document, window);
 * forgetNotice(window);
 * ```
 */

/** The attribute set on a form while it is being sent. */
export const SUBMITTING_ATTR = "data-submitting";

/**
 * Refuses a second submission of a form already being sent (its page is about to be replaced). Returning to the
 * page from the back-forward cache makes its forms sendable again.
 */
export function guardSubmissions(doc: Document, win: Window): void {
  doc.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
    if (event.defaultPrevented) return; // the browser's own validation or a script stopped it: not sent
    if (form.hasAttribute(SUBMITTING_ATTR)) {
      event.preventDefault();
      return;
    }
    form.setAttribute(SUBMITTING_ATTR, "");
    form.setAttribute("aria-busy", "true");
  });
  win.addEventListener("pageshow", (event) => {
    if (!(event as PageTransitionEvent).persisted) return;
    for (const form of Array.from(doc.querySelectorAll(`form[${SUBMITTING_ATTR}]`))) {
      form.removeAttribute(SUBMITTING_ATTR);
      form.removeAttribute("aria-busy");
    }
  });
}

/**
 * Drops `?ok=` from the address once its notice is on the page, so a reload or a later Back does not announce
 * again what may no longer be true ("User deactivated" above a user since activated).
 */
export function forgetNotice(win: Window): void {
  const url = new URL(win.location.href);
  if (!url.searchParams.has("ok")) return;
  url.searchParams.delete("ok");
  win.history.replaceState(win.history.state, "", url.pathname + url.search + url.hash);
}
