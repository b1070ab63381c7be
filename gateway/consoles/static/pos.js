// /pos: a store's till. The live pickup queue (pickupQueue, then pickupEvents; stockUpdates
// of the store says a new reservation may have come, and the queue is read again), the scan
// field a keyboard-wedge scanner types into (it gets the focus back after every action), the
// reservation's lines, mark ready, short pick, payment. While the socket is down the till says
// so, payment is paused, and the queue is read again on reconnect: nothing missed stays missing.

import {
  ACTIVE,
  STATUS_TEXT,
  SignIn,
  Session,
  StatusBadge,
  announce,
  claimsOf,
  clockText,
  describeError,
  gql,
  html,
  liveClient,
  mount,
  mountSession,
  randomKey,
  secondsSince,
  spacedCode,
  subscribe,
  timeText,
  tokens,
  useEffect,
  useRef,
  useState,
  useTick,
} from "./common.js";

const FIELDS = `
  id code storeId status channel lines { sku quantity } createdAt expiresAt readyAt collectedAt
  cancelledAt expiredAt arrivedAt arrivalNote waitingSeconds secondsRemaining
`;
const QUEUE = `query($storeId: ID!) { pickupQueue(storeId: $storeId) { ${FIELDS} } }`;
const ONE = `query($id: ID!) { reservation(id: $id) { ${FIELDS} } }`;
const EVENTS = `
subscription($storeId: ID!) {
  pickupEvents(storeId: $storeId) {
    id type sequence occurredAt
    shortage { sku quantity reason movedToStoreId }
    reservation { ${FIELDS} }
  }
}`;
const STOCK = "subscription($storeId: ID!) { stockUpdates(storeId: $storeId) { sku available } }";
const SCAN = `mutation($code: String!) { scanPickup(code: $code) { ${FIELDS} } }`;
const READY = `mutation($id: ID!) { markReadyForPickup(id: $id) { ${FIELDS} } }`;
const SHORT = `
mutation($id: ID!, $sku: String!, $found: Int!) {
  reportShortPick(reservationId: $id, sku: $sku, quantityFound: $found) { ${FIELDS} }
}`;
const COMPLETE = `
mutation($id: ID!, $payment: PaymentInput!) { completePickup(id: $id, payment: $payment) { ${FIELDS} } }`;
const STORES = "query { stores(first: 100) { id name timezone } }";

const CONSOLE = "pos";
const RELOAD_DELAY_MS = 150; // stock changes come in bursts: one queue read for each burst
const FINAL = new Set(["COLLECTED", "CANCELLED", "EXPIRED"]);
const EVENT_TEXT = {
  READY_FOR_PICKUP: "is ready for pickup",
  CUSTOMER_ARRIVED: "— the shopper has arrived",
  EXPIRING_SOON: "expires soon",
  COLLECTED: "was collected",
  CANCELLED: "was cancelled",
  EXPIRED: "expired",
  STOCK_SHORTAGE: "lost units to a stock shortage",
};

/** What a scanner or a person typed, as scanPickup reads it: a QR payload keeps its case (its
 * signature is case-sensitive) and loses only whitespace; a receipt code loses spaces and
 * dashes and is upper-cased. */
export function normaliseScan(text) {
  const compact = text.replace(/\s+/g, "");
  if (/^ropos1\./i.test(compact)) return `ROPOS1.${compact.slice(7)}`;
  return compact.replace(/-/g, "").toUpperCase();
}

function App() {
  const [token, setToken] = useState(() => tokens.get(CONSOLE));
  const claims = token ? claimsOf(token) : null;
  const signOut = () => {
    tokens.clear(CONSOLE);
    setToken(null);
  };
  if (!token || !claims || !claims.store) {
    return html`<${SignIn}
      title="Sign in to this store's till"
      roleHelp="Paste the POS token of one store."
      hint="For the demo: ropos token --role pos --store S001"
      accepts=${(c) =>
        (c.role === "pos" || c.role === "staff") && c.store
          ? null
          : `This is a ${c.role} token${c.store ? "" : " of no store"}; the till needs a POS (or staff) token of one store.`}
      check=${(t, c) => gql(t, QUEUE, { storeId: c.store })}
      onSignedIn=${(t) => {
        tokens.set(CONSOLE, t);
        setToken(t);
      }}
    />`;
  }
  return html`<${Till} token=${token} storeId=${claims.store} who=${claims.sub} onSignOut=${signOut} />`;
}

/** The chime: two short tones made with Web Audio (no sound file). Browsers let a page play
 * sound only after a click, so it starts switched off. */
function useChime() {
  const context = useRef(null);
  const [enabled, setEnabled] = useState(false);
  const [played, setPlayed] = useState(0);
  const toggle = () => {
    if (!enabled) {
      const Audio = globalThis.AudioContext || globalThis.webkitAudioContext;
      if (!Audio) return;
      context.current = context.current || new Audio();
      context.current.resume();
    }
    setEnabled(!enabled);
  };
  const play = () => {
    const ctx = context.current;
    if (!enabled || !ctx) return;
    const start = ctx.currentTime;
    [880, 1320].forEach((frequency, i) => {
      const at = start + i * 0.18;
      const tone = ctx.createOscillator();
      const gain = ctx.createGain();
      tone.type = "sine";
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.35);
      tone.connect(gain).connect(ctx.destination);
      tone.start(at);
      tone.stop(at + 0.4);
    });
    setPlayed((n) => n + 1);
  };
  return { enabled, toggle, play, played };
}

function Till({ token, storeId, who, onSignOut }) {
  // id -> {r: the reservation as last read, at: when (this device's monotonic clock),
  //        sequence: the last event's, fresh: new since the till opened}
  const [entries, setEntries] = useState({});
  const [open, setOpen] = useState(null); // the reservation in the panel
  const [connection, setConnection] = useState("connecting");
  const [online, setOnline] = useState(navigator.onLine);
  const [unseen, setUnseen] = useState(0);
  const [message, setMessage] = useState(null); // {kind: "ok" | "error", text}
  const [store, setStore] = useState({ id: storeId, name: storeId, timezone: "Europe/London" });
  const scanField = useRef(null);
  const loaded = useRef(false);
  const touched = useRef({}); // id -> when an event last changed it
  const reloadTimer = useRef(null);
  const openRef = useRef(null);
  openRef.current = open;
  const chime = useChime();
  const chimeRef = useRef(chime);
  chimeRef.current = chime;

  const refocus = () => requestAnimationFrame(() => scanField.current && scanField.current.focus());

  const show = (reservation) => {
    setOpen((current) => (current && current.id === reservation.id ? { ...current, ...reservation } : current));
  };

  const put = (reservation, sequence) => {
    const now = performance.now();
    touched.current[reservation.id] = now;
    setEntries((current) => {
      const next = { ...current };
      const known = current[reservation.id];
      if (known && sequence !== undefined && known.sequence !== undefined && sequence <= known.sequence) {
        return current; // a duplicate, or later than what we have
      }
      if (FINAL.has(reservation.status)) delete next[reservation.id];
      else next[reservation.id] = { r: reservation, at: now, sequence, fresh: known ? known.fresh : loaded.current };
      return next;
    });
    show(reservation);
  };

  const reload = async () => {
    const started = performance.now();
    try {
      const data = await gql(token, QUEUE, { storeId });
      const now = performance.now();
      setEntries((current) => {
        const next = {};
        const added = [];
        for (const r of data.pickupQueue) {
          const known = current[r.id];
          // An event that came while this read was on its way is newer than the read.
          if (known && (touched.current[r.id] || 0) > started) next[r.id] = known;
          else next[r.id] = { r, at: now, sequence: known && known.sequence, fresh: known ? known.fresh : loaded.current };
          if (!known && loaded.current) added.push(r);
        }
        for (const [id, known] of Object.entries(current)) {
          if (!next[id] && (touched.current[id] || 0) > started) next[id] = known;
        }
        if (added.length) {
          const codes = added.map((r) => spacedCode(r.code)).join(", ");
          announce(`New reservation${added.length > 1 ? "s" : ""}: ${codes}.`);
        }
        return next;
      });
      loaded.current = true;
      await refreshOpen(data.pickupQueue, started);
    } catch (failure) {
      setMessage({ kind: "error", text: describeError(failure) });
    }
  };

  /** The reservation in the panel, as the read that started at `started` found it: from the
   * queue, or read on its own when it left the queue (collected or cancelled meanwhile). */
  const refreshOpen = async (queue, started) => {
    const current = openRef.current;
    if (!current || (touched.current[current.id] || 0) > started) return;
    const found = queue.find((r) => r.id === current.id);
    if (found) {
      show(found);
      return;
    }
    const data = await gql(token, ONE, { id: current.id });
    if (data.reservation && (touched.current[current.id] || 0) <= started) show(data.reservation);
  };

  const reloadSoon = () => {
    clearTimeout(reloadTimer.current);
    reloadTimer.current = setTimeout(reload, RELOAD_DELAY_MS);
  };

  useEffect(() => {
    mountSession(html`<${Session} who=${`${who} · store ${storeId}`} onSignOut=${onSignOut} />`);
    gql(token, STORES).then(
      (d) => {
        const found = d.stores.find((s) => s.id === storeId);
        if (found) setStore(found);
      },
      () => {},
    );
    reload();
    const client = liveClient(token, {
      onState: setConnection,
      onReconnected: () => {
        // Whatever happened while the socket was down: read the queue again.
        reload();
        announce("Connection back. The queue is up to date.");
      },
    });
    const onError = (failure) => setMessage({ kind: "error", text: describeError(failure) });
    const stopEvents = subscribe(client, EVENTS, { storeId }, {
      onData: ({ pickupEvents: event }) => {
        put(event.reservation, event.sequence);
        if (event.type === "READY_FOR_PICKUP" || event.type === "CUSTOMER_ARRIVED") {
          setUnseen((n) => n + 1);
          chimeRef.current.play();
        }
        const note = event.reservation.arrivalNote ? ` (${event.reservation.arrivalNote})` : "";
        announce(`${spacedCode(event.reservation.code)} ${EVENT_TEXT[event.type] || event.type}${event.type === "CUSTOMER_ARRIVED" ? note : ""}.`);
      },
      onError,
    });
    const stopStock = subscribe(client, STOCK, { storeId }, { onData: reloadSoon, onError });
    const goOnline = () => setOnline(true);
    const goOffline = () => setOnline(false);
    addEventListener("online", goOnline);
    addEventListener("offline", goOffline);
    refocus();
    return () => {
      stopEvents();
      stopStock();
      client.dispose();
      clearTimeout(reloadTimer.current);
      removeEventListener("online", goOnline);
      removeEventListener("offline", goOffline);
    };
  }, [token, storeId]);

  useEffect(() => {
    document.title = unseen ? `(${unseen}) ROPOS Till` : "ROPOS Till";
  }, [unseen]);

  const live = connection === "online" && online;

  /** Run one mutation; show the API's answer; the scan field gets the focus back. */
  const act = async (query, variables, success) => {
    try {
      const data = await gql(token, query, variables);
      const reservation = Object.values(data)[0];
      put(reservation);
      setOpen((current) => (current && current.id === reservation.id ? { ...current, ...reservation } : reservation));
      const text = success(reservation);
      setMessage({ kind: "ok", text });
      return reservation;
    } catch (failure) {
      setMessage({ kind: "error", text: describeError(failure) });
      return null;
    } finally {
      refocus();
    }
  };

  const scan = async (event) => {
    event.preventDefault();
    const field = scanField.current;
    const code = normaliseScan(field.value);
    field.value = "";
    if (!code) {
      refocus();
      return;
    }
    await act(SCAN, { code }, (r) => `Found ${spacedCode(r.code)}: ${STATUS_TEXT[r.status]}.`);
  };

  const list = Object.values(entries).filter((e) => ACTIVE.has(e.r.status));
  const arrived = list.filter((e) => e.r.arrivedAt);
  const waiting = (e, now) => secondsSince(e.r.waitingSeconds || 0, e.at, now, 1);
  const others = list
    .filter((e) => !e.r.arrivedAt)
    .sort((a, b) => (a.r.createdAt < b.r.createdAt ? 1 : a.r.createdAt > b.r.createdAt ? -1 : 0));
  const now = useTick(1000);
  arrived.sort((a, b) => waiting(b, now) - waiting(a, now));
  const toPick = list.filter((e) => e.r.status === "HELD");

  return html`
    <div class="pos-bar">
      <p class=${`connection connection-${live ? "online" : connection === "connecting" ? "connecting" : "offline"}`} role="status" data-testid="connection">
        ${live ? "Live" : connection === "connecting" ? "Connecting…" : connection === "refused" ? "Sign-in refused" : "Reconnecting…"}
      </p>
      <div class="row">
        ${unseen > 0 &&
        html`<span class="badge" data-testid="badge" aria-label=${`${unseen} new`}>${unseen}</span>
          <button type="button" class="secondary" onClick=${() => { setUnseen(0); refocus(); }}>Mark seen</button>`}
        <button type="button" class="secondary" aria-pressed=${chime.enabled ? "true" : "false"} data-chimes=${chime.played}
          onClick=${() => { chime.toggle(); refocus(); }}>
          ${chime.enabled ? "Sound on" : "Enable sound"}
        </button>
        <button type="button" class="secondary" onClick=${() => { print(); refocus(); }}>Print pick list</button>
      </div>
    </div>
    ${!live &&
    html`<div class="notice notice-warn" data-testid="offline-banner">
      <p>
        ${connection === "refused"
          ? "The server refused this till's token: sign out and in again."
          : "Reconnecting to ROPOS… Payments are paused until the connection is back; the queue is read again then."}
      </p>
    </div>`}
    <form class="scan-form card" onSubmit=${scan} aria-label="Scan">
      <div class="field">
        <label for="scan">Scan or type the pickup code <span class="field-hint">QR code or receipt code; case and spaces do not matter</span></label>
        <input id="scan" ref=${scanField} autocomplete="off" autocapitalize="characters" spellcheck="false" enterkeyhint="go" />
      </div>
      <button type="submit">Find</button>
    </form>
    ${message &&
    (message.kind === "error"
      ? html`<div class="notice notice-error" role="alert" data-testid="message"><p>${message.text}</p></div>`
      : html`<div class="notice notice-ok" role="status" data-testid="message"><p>${message.text}</p></div>`)}
    <div class="pos-grid">
      ${open &&
      html`<${Panel}
        reservation=${open}
        store=${store}
        live=${live}
        act=${act}
        onClose=${() => { setOpen(null); refocus(); }}
      />`}
      <div>
        <section class="card" aria-labelledby="arrived-title">
          <h2 id="arrived-title">At the counter (${arrived.length})</h2>
          ${arrived.length === 0 && html`<p class="muted">Nobody has checked in.</p>`}
          <ul class="plain-list" data-testid="arrived">
            ${arrived.map((e) => html`<${QueueItem} entry=${e} now=${now} waiting=${waiting(e, now)} store=${store}
              onOpen=${() => { setOpen(e.r); refocus(); }} />`)}
          </ul>
        </section>
        <section class="card" aria-labelledby="queue-title">
          <h2 id="queue-title">Queue, newest first (${others.length})</h2>
          ${others.length === 0 && html`<p class="muted">No reservation waits.</p>`}
          <ul class="plain-list" data-testid="queue">
            ${others.map((e) => html`<${QueueItem} entry=${e} now=${now} store=${store}
              onOpen=${() => { setOpen(e.r); refocus(); }} />`)}
          </ul>
        </section>
      </div>
    </div>
    <${PickList} entries=${toPick} store=${store} />
  `;
}

function QueueItem({ entry, now, waiting, store, onOpen }) {
  const r = entry.r;
  const left = secondsSince(r.secondsRemaining, entry.at, now, -1);
  const classes = ["queue-item", r.arrivedAt ? "arrived" : "", entry.fresh ? "fresh" : ""].join(" ");
  return html`
    <li class=${classes} data-code=${r.code} data-status=${r.status}>
      <div class="item-head">
        <span class="code">${spacedCode(r.code)}</span>
        ${entry.fresh && html`<strong>New</strong>`}
        <${StatusBadge} status=${r.status} />
      </div>
      ${r.arrivedAt &&
      html`<p class="waiting" data-testid="waiting">
        Arrived ${timeText(r.arrivedAt, store.timezone)}, waiting ${clockText(waiting)}${r.arrivalNote ? ` · ${r.arrivalNote}` : ""}
      </p>`}
      <p>${r.lines.map((l) => `${l.quantity} × ${l.sku}`).join(", ")}</p>
      <p class="muted">Reserved ${timeText(r.createdAt, store.timezone)} · expires in ${clockText(left)}</p>
      <button type="button" class="secondary" onClick=${onOpen} aria-label=${`Open ${spacedCode(r.code)}`}>Open</button>
    </li>
  `;
}

function Panel({ reservation: r, store, live, act, onClose }) {
  const [found, setFound] = useState({});
  const [amount, setAmount] = useState("");
  const [currency, setCurrency] = useState("GBP");
  const [method, setMethod] = useState("card");
  const reference = useRef(null);
  // One payment reference per reservation opened: pressing Complete again after a failure
  // is a retry of the same payment, which the API answers without taking it twice.
  if (!reference.current || reference.current.id !== r.id) {
    reference.current = { id: r.id, value: randomKey(`till-${store.id}`) };
  }
  const active = ACTIVE.has(r.status);
  const complete = (event) => {
    event.preventDefault();
    act(
      COMPLETE,
      { id: r.id, payment: { amount: amount.trim(), currency, method, reference: reference.current.value } },
      (done) => `${spacedCode(done.code)} collected: paid ${amount.trim()} ${currency} by ${method}.`,
    );
  };
  return html`
    <section class="card stack" aria-labelledby="panel-title" data-testid="panel" data-status=${r.status}>
      <div class="item-head">
        <h2 id="panel-title">Reservation <span class="code">${spacedCode(r.code)}</span></h2>
        <${StatusBadge} status=${r.status} />
      </div>
      ${r.arrivedAt && html`<p class="waiting">The shopper is here${r.arrivalNote ? `: ${r.arrivalNote}` : ""}.</p>`}
      <div class="table-wrap">
        <table>
          <caption class="visually-hidden">Lines to hand over</caption>
          <thead><tr><th scope="col">SKU</th><th scope="col" class="num">Units</th>${active && html`<th scope="col">Short pick</th>`}</tr></thead>
          <tbody>
            ${r.lines.map(
              (l) => html`<tr>
                <td>${l.sku}</td>
                <td class="num">${l.quantity}</td>
                ${active &&
                html`<td>
                  <div class="row">
                    <div>
                      <label for=${`found-${l.sku}`} class="visually-hidden">Units of ${l.sku} found</label>
                      <input id=${`found-${l.sku}`} type="number" inputmode="numeric" min="0" max=${l.quantity - 1}
                        placeholder="found" value=${found[l.sku] ?? ""}
                        onInput=${(e) => setFound({ ...found, [l.sku]: e.currentTarget.value })} />
                    </div>
                    <button type="button" class="secondary" aria-label=${`Report short pick of ${l.sku}`}
                      disabled=${found[l.sku] === undefined || found[l.sku] === ""}
                      onClick=${() =>
                        act(SHORT, { id: r.id, sku: l.sku, found: Number(found[l.sku]) }, (x) =>
                          `Short pick of ${l.sku} reported: ${spacedCode(x.code)} is ${STATUS_TEXT[x.status]}.`)}>
                      Report short
                    </button>
                  </div>
                </td>`}
              </tr>`,
            )}
          </tbody>
        </table>
      </div>
      ${active &&
      html`<div class="actions">
        ${r.status === "HELD" &&
        html`<button type="button" onClick=${() => act(READY, { id: r.id }, (x) => `${spacedCode(x.code)} is ready for pickup.`)}>
          Mark ready
        </button>`}
      </div>
      <form onSubmit=${complete} aria-labelledby="pay-title">
        <h3 id="pay-title">Take payment and hand over</h3>
        <div class="row">
          <div class="field">
            <label for="amount">Amount</label>
            <input id="amount" inputmode="decimal" required value=${amount} onInput=${(e) => setAmount(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="currency">Currency</label>
            <select id="currency" value=${currency} onChange=${(e) => setCurrency(e.currentTarget.value)}>
              <option value="GBP">GBP</option><option value="EUR">EUR</option><option value="USD">USD</option>
            </select>
          </div>
          <div class="field">
            <label for="method">Paid by</label>
            <select id="method" value=${method} onChange=${(e) => setMethod(e.currentTarget.value)}>
              <option value="card">Card</option><option value="cash">Cash</option><option value="voucher">Voucher</option>
            </select>
          </div>
        </div>
        ${!live && html`<p id="pay-paused" class="notice notice-warn">Payment is paused while the till is offline.</p>`}
        <button type="submit" disabled=${!live || !amount.trim()} aria-describedby=${!live ? "pay-paused" : undefined}>
          Complete pickup
        </button>
      </form>`}
      ${r.status === "COLLECTED" && html`<p>Collected at ${timeText(r.collectedAt, store.timezone)}.</p>`}
      <div class="actions">
        <button type="button" class="secondary" onClick=${onClose}>Close</button>
      </div>
    </section>
  `;
}

function PickList({ entries, store }) {
  return html`
    <section class="pick-list" aria-label="Pick list">
      <h2>Pick list · ${store.name}</h2>
      <table>
        <thead><tr><th scope="col">Picked</th><th scope="col">Code</th><th scope="col">SKU</th><th scope="col">Units</th><th scope="col">Expires</th></tr></thead>
        <tbody>
          ${entries.flatMap((e) =>
            e.r.lines.map(
              (l, i) => html`<tr>
                <td><span class="tick-box"></span></td>
                <td class="code">${i === 0 ? spacedCode(e.r.code) : ""}</td>
                <td>${l.sku}</td>
                <td>${l.quantity}</td>
                <td>${i === 0 ? timeText(e.r.expiresAt, store.timezone) : ""}</td>
              </tr>`,
            ),
          )}
        </tbody>
      </table>
    </section>
  `;
}

mount(App);
