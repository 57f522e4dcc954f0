/**
 * Form pieces: the CSRF hidden field, labelled fields with their error beside them (the input is preserved by the
 * caller passing the submitted value back), and a form-level error.
 */
import type { ComponentChildren } from "preact";

/** Name of the CSRF form field. */
export const CSRF_FIELD = "_csrf";

/** What a form shows after a failed submission: the values to keep and errors by field. */
export interface FormState {
  values: Record<string, string>;
  errors: Record<string, string>;
  /** An error not tied to one field. */
  message?: string;
}

/** The name of the field whose error comes first (the one at fault), if any. */
function firstError(state: FormState): string | undefined {
  for (const name in state.errors) return name;
  return undefined;
}

/** An empty form state, optionally with initial values. */
export function formState(values: Record<string, string> = {}): FormState {
  return { values, errors: {} };
}

/** The hidden CSRF field every POST form carries. */
export function CsrfField({ token }: { token: string }) {
  return <input type="hidden" name={CSRF_FIELD} value={token} />;
}

/** Props of {@link Field}. */
export interface FieldProps {
  /**
   * Names the form in the element ids (`<idPrefix>-<name>`): a page may hold two forms with a field of the same
   * name (a key's name and the user's name), and a label must focus its own form's input.
   */
  idPrefix: string;
  name: string;
  label: string;
  state: FormState;
  type?: string;
  placeholder?: string;
  hint?: ComponentChildren;
  required?: boolean;
  autocomplete?: string;
  inputmode?: "decimal" | "numeric" | "email" | "text";
  /** Never echo the submitted value (secrets). */
  secret?: boolean;
  step?: string;
  min?: string;
  class?: string;
  autofocus?: boolean;
}

/** A labelled input with its error (if any) beside it; the submitted value is kept. */
export function Field(p: FieldProps) {
  const error = p.state.errors[p.name];
  const id = `${p.idPrefix}-${p.name}`;
  // The field named first after a failed post takes the focus, so a keyboard user starts where the fault is.
  const focus = p.autofocus || (error !== undefined && firstError(p.state) === p.name);
  return (
    <div class={p.class}>
      <label class="label" for={id}>
        {p.label}
        {p.required && <span class="text-rose-500" aria-hidden="true">*</span>}
      </label>
      <input
        id={id}
        name={p.name}
        type={p.type ?? "text"}
        class={`input ${error ? "input-invalid" : ""}`}
        value={p.secret ? "" : (p.state.values[p.name] ?? "")}
        placeholder={p.placeholder}
        required={p.required}
        autocomplete={p.autocomplete ?? (p.secret ? "off" : undefined)}
        inputMode={p.inputmode}
        step={p.step}
        min={p.min}
        autofocus={focus || undefined}
        spellcheck={p.secret ? false : undefined}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? `${id}-error` : p.hint ? `${id}-hint` : undefined}
      />
      {error
        ? <p id={`${id}-error`} class="field-error" data-field-error={p.name}>{error}</p>
        : p.hint && <p id={`${id}-hint`} class="mt-1 text-xs text-slate-500">{p.hint}</p>}
    </div>
  );
}

/** Props of {@link SelectField}. */
export interface SelectFieldProps {
  /** Names the form in the element ids, as for {@link Field}. */
  idPrefix: string;
  name: string;
  label: string;
  state: FormState;
  options: Array<[value: string, label: string]>;
  hint?: ComponentChildren;
  class?: string;
}

/** A labelled select with its error beside it. */
export function SelectField(p: SelectFieldProps) {
  const error = p.state.errors[p.name];
  const id = `${p.idPrefix}-${p.name}`;
  const value = p.state.values[p.name] ?? "";
  const focus = error !== undefined && firstError(p.state) === p.name;
  return (
    <div class={p.class}>
      <label class="label" for={id}>{p.label}</label>
      <select
        id={id}
        name={p.name}
        class={`input ${error ? "input-invalid" : ""}`}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        autofocus={focus || undefined}
      >
        {p.options.map(([v, label]) => <option key={v} value={v} selected={v === value}>{label}</option>)}
      </select>
      {error
        ? <p id={`${id}-error`} class="field-error" data-field-error={p.name}>{error}</p>
        : p.hint && <p class="mt-1 text-xs text-slate-500">{p.hint}</p>}
    </div>
  );
}

/**
 * The state's value for a select, if it is one of `options`, else `fallback` (the stored or default choice):
 * a value no option has would render with nothing selected, and the browser would send the first option.
 */
export function keepChoice(
  state: FormState,
  name: string,
  options: Array<[value: string, label: string]>,
  fallback: string,
): FormState {
  if (options.some(([v]) => v === state.values[name])) return state;
  return { ...state, values: { ...state.values, [name]: fallback } };
}

/** A form-level error (not tied to a field). */
export function FormError({ state }: { state: FormState }) {
  if (!state.message) return null;
  return (
    <p role="alert" class="rounded-lg border border-rose-200 bg-rose-50 px-3 py-2 text-sm text-rose-800">
      {state.message}
    </p>
  );
}
