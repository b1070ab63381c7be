// What the three consoles share: the public GraphQL API over HTTP and WebSocket, the token a
// person signs in with, the live regions screen readers hear, and how times and money read.
// Nothing here knows a private endpoint: the consoles are clients of the API like any other.

import {
  html,
  render,
  useCallback,
  useEffect,
  useMemo,
  useRef,
  useState,
} from "./vendor/htm-preact-standalone.module.js";

export { html, render, useCallback, useEffect, useMemo, useRef, useState };

// --- the API over HTTP ----------------------------------------------------------------------

/** An error as the API gave it: its message and extensions.code are shown as they are. */
export class ApiError extends Error {
  constructor(message, code, extensions = {}) {
    super(message);
    this.code = code;
    this.extensions = extensions;
  }
}

/** The words a person sees for an error: the API's message and its code. */
export function describeError(error) {
  if (error instanceof ApiError) {
    return error.code ? `${error.message} (${error.code})` : error.message;
  }
  if (Array.isArray(error) && error.length) {
    return describeError(fromGraphQLError(error[0])); // a subscription's error payload
  }
  if (error && typeof error.code === "number") {
    return `The live connection closed (${error.code}${error.reason ? `: ${error.reason}` : ""}).`;
  }
  return String((error && error.message) || error);
}

function fromGraphQLError(error) {
  const extensions = error.extensions || {};
  return new ApiError(error.message, extensions.code || "", extensions);
}

/** One GraphQL operation over HTTP; its data, or an ApiError with the API's first error. */
export async function gql(token, query, variables = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("ROPOS cannot be reached: check the connection and try again.", "OFFLINE");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`ROPOS answered ${response.status} without a GraphQL result.`, "HTTP");
  }
  if (body.errors && body.errors.length) throw fromGraphQLError(body.errors[0]);
  return body.data;
}

// --- the API over WebSocket -------------------------------------------------------------------

/** Reconnect waits: 0.5 s, 1 s, 2 s... up to 10 s, each with jitter (so tills that lost the
 * same server do not all come back in the same instant). */
export function backoffMs(retries) {
  const ceiling = Math.min(500 * 2 ** retries, 10000);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

const FORBIDDEN_CLOSE = 4403; // the server refused the token in connection_init

/**
 * A graphql-transport-ws client (the vendored graphql-ws) that signs in with the token, reports
 * its state to `onState` ("connecting", "online", "reconnecting", "refused") and reconnects
 * with backoff for as long as the page is open; graphql-ws subscribes again by itself after a
 * reconnect. `onReconnected` runs after every connection but the first: what happened while
 * the socket was down is read again from the queries.
 */
export function liveClient(token, { onState, onReconnected }) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let everConnected = false;
  let refused = false;
  const client = globalThis.graphqlWs.createClient({
    url: `${scheme}://${location.host}/graphql`,
    connectionParams: () => ({ Authorization: `Bearer ${token}` }),
    lazy: false,
    keepAlive: 10000,
    retryAttempts: Infinity,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, backoffMs(retries))),
    shouldRetry: (event) => !(event && event.code === FORBIDDEN_CLOSE),
    onNonLazyError: () => {},
    on: {
      connecting: () => onState(everConnected ? "reconnecting" : "connecting"),
      connected: () => {
        const again = everConnected;
        everConnected = true;
        onState("online");
        if (again && onReconnected) onReconnected();
      },
      closed: (event) => {
        if (event && event.code === FORBIDDEN_CLOSE) {
          refused = true;
          onState("refused", event.reason);
        } else if (!refused) {
          onState(everConnected ? "reconnecting" : "connecting");
        }
      },
    },
  });
  return client;
}

/** Subscribe; `onData` gets each event's data, `onError` the API's errors. Returns unsubscribe. */
export function subscribe(client, query, variables, { onData, onError, onComplete }) {
  return client.subscribe(
    { query, variables },
    {
      next: (result) => {
        if (result.errors && result.errors.length) onError && onError(result.errors);
        else if (result.data) onData(result.data);
      },
      error: (error) => onError && onError(error),
      complete: () => onComplete && onComplete(),
    },
  );
}

// --- signing in -------------------------------------------------------------------------------

/** The claims of a JWT, read without checking it: only to know whose it is and for which
 * store. The API checks the signature on every call. */
export function claimsOf(token) {
  try {
    const part = token.split(".")[1];
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    return JSON.parse(atob(padded));
  } catch {
    return null;
  }
}

/** The token of one console, kept for this tab only (sessionStorage). */
export const tokens = {
  get(console) {
    return sessionStorage.getItem(`ropos.${console}.token`);
  },
  set(console, token) {
    sessionStorage.setItem(`ropos.${console}.token`, token);
  },
  clear(console) {
    sessionStorage.removeItem(`ropos.${console}.token`);
  },
};

/**
 * The sign-in form: a token pasted in, its role checked against what the console needs, then
 * `check(token)` asks the API (an expired or forged token is refused there, with its message).
 */
export function SignIn({ title, roleHelp, hint, accepts, check, onSignedIn }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const token = value.trim();
    const claims = claimsOf(token);
    if (!claims) {
      setError("This is not a token: paste the whole JWT (three parts separated by dots).");
      return;
    }
    const problem = accepts(claims);
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await check(token, claims);
      onSignedIn(token, claims);
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  return html`
    <form class="card sign-in" onSubmit=${submit} aria-labelledby="sign-in-title" novalidate>
      <h2 id="sign-in-title">${title}</h2>
      <p>${roleHelp}</p>
      <div class="field">
        <label for="token">Token <span class="field-hint">${hint}</span></label>
        <textarea
          id="token"
          name="token"
          autocomplete="off"
          spellcheck="false"
          required
          aria-invalid=${error ? "true" : "false"}
          aria-describedby=${error ? "token-error" : undefined}
          value=${value}
          onInput=${(e) => setValue(e.currentTarget.value)}
        ></textarea>
      </div>
      ${error && html`<p id="token-error" class="notice notice-error" role="alert">${error}</p>`}
      <button type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
    </form>
  `;
}

/** Who is signed in, in the masthead, with a way out. */
export function Session({ who, onSignOut, children }) {
  return html`
    ${children}
    <span class="who">${who}</span>
    <button type="button" class="link-button" onClick=${onSignOut}>Sign out</button>
  `;
}

// --- live regions -------------------------------------------------------------------------------

/** Tell screen readers, through the shell's live regions (they exist from the page's start). */
export function announce(text, politeness = "polite") {
  const region = document.getElementById(`announce-${politeness}`);
  if (!region) return;
  // Emptied first, then filled on the next frame: the same words twice are read twice.
  region.textContent = "";
  requestAnimationFrame(() => {
    region.textContent = text;
  });
}

// --- clocks -----------------------------------------------------------------------------------

/** A re-render every `ms` while mounted; returns the time of the last tick. */
export function useTick(ms = 1000) {
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    const id = setInterval(() => setNow(performance.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

/**
 * A count of seconds the server gave (secondsRemaining, waitingSeconds), carried forward on
 * this device's monotonic clock from when it arrived: the server's figure corrects it each time
 * a new one comes, and the device's wall clock (which may be wrong) is never used.
 */
export function secondsSince(base, receivedAt, now, direction) {
  const elapsed = Math.max(0, Math.floor((now - receivedAt) / 1000));
  return direction < 0 ? Math.max(0, base - elapsed) : base + elapsed;
}

/** 1:02:03 or 2:03. */
export function clockText(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

/** "1 hour 5 minutes", "3 minutes", "40 seconds": what a screen reader says. */
export function spokenDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (hours) return minutes ? `${plural(hours, "hour")} ${plural(minutes, "minute")}` : plural(hours, "hour");
  if (minutes) return plural(minutes, "minute");
  return plural(s, "second");
}

/** A time of the API (ISO-8601, UTC) in the store's time zone. */
export function timeText(iso, timeZone) {
  if (!iso) return "";
  const options = { hour: "2-digit", minute: "2-digit" };
  try {
    return new Intl.DateTimeFormat("en-GB", { ...options, timeZone }).format(new Date(iso));
  } catch {
    return new Intl.DateTimeFormat("en-GB", options).format(new Date(iso));
  }
}

export function dateTimeText(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat("en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: "UTC",
  }).format(new Date(iso)) + " UTC";
}

export function percent(value, digits = 1) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(digits)} %`;
}

/** The words of a reservation status. */
export const STATUS_TEXT = {
  HELD: "Held",
  READY_FOR_PICKUP: "Ready for pickup",
  COLLECTED: "Collected",
  CANCELLED: "Cancelled",
  EXPIRED: "Expired",
};

export const ACTIVE = new Set(["HELD", "READY_FOR_PICKUP"]);

export function StatusBadge({ status }) {
  return html`<span class="status status-${status}">${STATUS_TEXT[status] || status}</span>`;
}

/** A pickup code as people read it out: in two halves (ABC DEF). */
export function spacedCode(code) {
  if (!code || code.length < 6) return code || "";
  const half = Math.ceil(code.length / 2);
  return `${code.slice(0, half)} ${code.slice(half)}`;
}

/** A random key for an idempotent request (a retry of the same click sends the same one). */
export function randomKey(prefix) {
  if (globalThis.crypto && crypto.randomUUID) return `${prefix}-${crypto.randomUUID()}`;
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Render a console into the shell: the app into #app, the session controls into #session. */
export function mount(App) {
  const root = document.getElementById("app");
  root.textContent = ""; // the shell's "Loading…" is not Preact's to replace
  render(html`<${App} />`, root);
}

export function mountSession(node) {
  render(node, document.getElementById("session"));
}
