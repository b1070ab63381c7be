// /shop/reservations/{id}: one reservation, live. Its state comes from reservationUpdates (a
// SNAPSHOT, then every change); the countdown runs on this device from the server's
// secondsRemaining, corrected by every event, and is announced to screen readers only as it
// crosses a threshold (30, 10, 5 and 1 minute left), never every second.

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
  secondsSince,
  spacedCode,
  spokenDuration,
  subscribe,
  timeText,
  tokens,
  useEffect,
  useRef,
  useState,
  useTick,
} from "./common.js";

const FIELDS = `
  id code storeId status lines { sku quantity } holdSeconds createdAt expiresAt readyAt
  collectedAt cancelledAt expiredAt cancelReason resourcedFrom arrivedAt arrivalNote
  secondsRemaining
`;
const RESERVATION = `
query($id: ID!) {
  reservation(id: $id) {
    ${FIELDS}
    pickupQrSvg
    store { id name address lat lon timezone }
  }
}`;
const UPDATES = `
subscription($id: ID!) {
  reservationUpdates(id: $id) {
    id type sequence occurredAt
    shortage { sku quantity reason movedToReservationId movedToStoreId }
    reservation { ${FIELDS} }
  }
}`;
const CHECK_IN = `mutation($id: ID!, $note: String) { checkIn(id: $id, note: $note) { ${FIELDS} } }`;
const CANCEL = `
mutation($id: ID!) { cancelReservation(id: $id, reason: "Cancelled by the shopper") { ${FIELDS} } }`;
const STORES = "query { stores(first: 100) { id name } }";

const CONSOLE = "shop";
// Announced once each as the countdown passes them.
const THRESHOLDS = [1800, 600, 300, 60];

const WHAT_IT_MEANS = {
  HELD: "The store is getting your order ready. Come before the time runs out.",
  READY_FOR_PICKUP: "Your order is ready: show the code at the till.",
  COLLECTED: "Collected. Thank you!",
  CANCELLED: "This reservation was cancelled; nothing is held for you.",
  EXPIRED: "The time ran out and the units went back on sale.",
};

function App() {
  const [token, setToken] = useState(() => tokens.get(CONSOLE));
  const claims = token ? claimsOf(token) : null;
  const reservationId = document.getElementById("app").dataset.reservationId;
  const signOut = () => {
    tokens.clear(CONSOLE);
    setToken(null);
  };
  useEffect(() => {
    mountSession(
      claims ? html`<${Session} who=${`Signed in as ${claims.sub}`} onSignOut=${signOut} />` : null,
    );
  }, [token]);
  if (!token || !claims) {
    return html`<${SignIn}
      title="Sign in to see your reservation"
      roleHelp="Paste your customer token."
      hint="For the demo: ropos token --role customer --sub alice"
      accepts=${(c) => (c.role === "customer" ? null : `This is a ${c.role} token; sign in with a customer token.`)}
      check=${(t) => gql(t, RESERVATION, { id: reservationId })}
      onSignedIn=${(t) => {
        tokens.set(CONSOLE, t);
        setToken(t);
      }}
    />`;
  }
  return html`<${ReservationPage} token=${token} id=${reservationId} />`;
}

function ReservationPage({ token, id }) {
  const [reservation, setReservation] = useState(null);
  const [qr, setQr] = useState(null);
  const [store, setStore] = useState(null);
  const [clock, setClock] = useState(null); // {seconds, at}: the server's secondsRemaining
  const [shortages, setShortages] = useState([]);
  const [storeNames, setStoreNames] = useState({});
  const [connection, setConnection] = useState("connecting");
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const lastSequence = useRef(-1);
  const lastStatus = useRef(null);

  const take = (next) => {
    setReservation((current) => ({ ...(current || {}), ...next }));
    setClock({ seconds: next.secondsRemaining, at: performance.now() });
    if (lastStatus.current && lastStatus.current !== next.status) {
      announce(`${STATUS_TEXT[next.status]}. ${WHAT_IT_MEANS[next.status]}`, "assertive");
    }
    lastStatus.current = next.status;
  };

  useEffect(() => {
    let client = null;
    let stop = () => {};
    gql(token, RESERVATION, { id })
      .then((data) => {
        const found = data.reservation;
        if (!found) {
          setError(`No reservation ${id} of yours (NOT_FOUND).`);
          return;
        }
        setQr(found.pickupQrSvg);
        setStore(found.store);
        take(found);
        client = liveClient(token, { onState: setConnection });
        stop = subscribe(client, UPDATES, { id }, {
          onData: ({ reservationUpdates: event }) => {
            // The snapshot after a reconnect has the current sequence: newer events only.
            if (event.type !== "SNAPSHOT" && event.sequence <= lastSequence.current) return;
            lastSequence.current = event.sequence;
            take(event.reservation);
            if (event.shortage) setShortages((list) => [...list, event.shortage]);
          },
          onError: (failure) => setError(describeError(failure)),
        });
      })
      .catch((failure) => setError(describeError(failure)));
    gql(token, STORES).then(
      (d) => setStoreNames(Object.fromEntries(d.stores.map((s) => [s.id, s.name]))),
      () => {},
    );
    return () => {
      stop();
      if (client) client.dispose();
    };
  }, [token, id]);

  if (error && !reservation) {
    return html`<div class="notice notice-error" role="alert"><p>${error}</p></div>`;
  }
  if (!reservation) return html`<p class="loading">Loading your reservation…</p>`;

  const active = ACTIVE.has(reservation.status);
  return html`
    <h1>Reservation <span class="code">${spacedCode(reservation.code)}</span></h1>
    ${connection !== "online" &&
    active &&
    html`<div class="notice notice-warn" role="status">
      <p>${connection === "refused" ? "Your sign-in was refused: sign out and in again." : "Reconnecting for live updates…"}</p>
    </div>`}
    ${error && html`<div class="notice notice-error" role="alert"><p>${error}</p></div>`}
    ${notice && html`<div class="notice notice-ok" role="status"><p>${notice}</p></div>`}
    <section class="card stack" aria-labelledby="state-title">
      <h2 id="state-title" class="visually-hidden">Where it stands</h2>
      <p class="big-status" data-status=${reservation.status}>
        <${StatusBadge} status=${reservation.status} />
      </p>
      <p>${WHAT_IT_MEANS[reservation.status]}</p>
      ${active && clock && html`<${Countdown} clock=${clock} />`}
      ${shortages.map((s) => html`<${ShortageNote} shortage=${s} storeNames=${storeNames} />`)}
    </section>
    ${active &&
    html`<section class="card" aria-labelledby="code-title">
      <h2 id="code-title">Your pickup code</h2>
      <figure>
        ${qr &&
        html`<div
          class="qr"
          role="img"
          aria-label=${`QR code for pickup code ${spacedCode(reservation.code)}`}
          dangerouslySetInnerHTML=${{ __html: scalable(qr) }}
        ></div>`}
        <figcaption>
          Show this at the till, or give the code${" "}
          <span class="code pickup-code" data-testid="pickup-code">${spacedCode(reservation.code)}</span>
        </figcaption>
      </figure>
    </section>`}
    <section class="card" aria-labelledby="what-title">
      <h2 id="what-title">What you reserved</h2>
      <ul>
        ${reservation.lines.map((l) => html`<li>${l.quantity} × ${l.sku}</li>`)}
      </ul>
      ${reservation.lines.length === 0 && html`<p class="muted">Nothing is held any more.</p>`}
    </section>
    ${store && html`<${StoreCard} store=${store} />`}
    ${active &&
    html`<${Actions}
      token=${token}
      reservation=${reservation}
      store=${store}
      onChanged=${(next, message) => {
        take(next);
        setNotice(message);
        setError(null);
      }}
      onError=${(message) => setError(message)}
    />`}
  `;
}

/** The API's SVG has a size in pixels and no viewBox: given one, it scales to the box the
 * stylesheet gives it (big enough for a till's scanner to read at arm's length). */
export function scalable(svg) {
  if (/viewBox=/.test(svg)) return svg;
  const size = svg.match(/<svg[^>]*\bwidth="(\d+(?:\.\d+)?)"[^>]*\bheight="(\d+(?:\.\d+)?)"/);
  return size ? svg.replace("<svg", `<svg viewBox="0 0 ${size[1]} ${size[2]}"`) : svg;
}

function Countdown({ clock }) {
  const now = useTick(1000);
  const left = secondsSince(clock.seconds, clock.at, now, -1);
  const previous = useRef(null);
  useEffect(() => {
    const before = previous.current;
    previous.current = left;
    if (before === null) return; // what was already passed when the page opened is not news
    const crossed = THRESHOLDS.find((t) => before > t && left <= t);
    if (crossed) announce(`${spokenDuration(crossed)} left to collect your order.`);
  }, [left]);
  return html`
    <div class="countdown-box">
      <p>Time left to collect</p>
      <span class="countdown" role="timer" aria-label=${`${spokenDuration(left)} left`}>${clockText(left)}</span>
    </div>
  `;
}

function ShortageNote({ shortage, storeNames }) {
  const where = shortage.movedToStoreId
    ? html`now held for you at ${storeNames[shortage.movedToStoreId] || shortage.movedToStoreId}:${" "}
        <a href=${`/shop/reservations/${encodeURIComponent(shortage.movedToReservationId)}`}>see that reservation</a>`
    : html`no other store nearby had them, so they were let go`;
  const why = shortage.reason === "SHORT_PICK" ? "were not on the shelf" : "ran short at the store";
  return html`<div class="notice notice-warn" data-testid="shortage">
    <p>${shortage.quantity} × ${shortage.sku} ${why}; ${where}.</p>
  </div>`;
}

function StoreCard({ store }) {
  const coordinates = `${store.lat.toFixed(4)}, ${store.lon.toFixed(4)}`;
  return html`
    <section class="card" aria-labelledby="store-title">
      <h2 id="store-title">Where to collect</h2>
      <address data-testid="store-address">
        <strong>${store.name}</strong><br />
        ${store.address && html`${store.address}<br />`}
        Store ${store.id} · ${coordinates}<br />
        <span class="muted">Times in ${store.timezone}</span>
      </address>
      <p><a href=${`geo:${store.lat},${store.lon}`}>Open in your maps app</a></p>
    </section>
  `;
}

function Actions({ token, reservation, store, onChanged, onError }) {
  const [note, setNote] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const run = async (query, variables, message) => {
    setBusy(true);
    try {
      const data = await gql(token, query, variables);
      onChanged(Object.values(data)[0], message);
    } catch (failure) {
      onError(describeError(failure));
    } finally {
      setBusy(false);
      setConfirming(false);
    }
  };
  const checkIn = (event) => {
    event.preventDefault();
    run(CHECK_IN, { id: reservation.id, note: note.trim() || null }, "The store knows you are here.");
  };
  const zone = store ? store.timezone : undefined;
  return html`
    <section class="card" aria-labelledby="actions-title">
      <h2 id="actions-title">At the store</h2>
      ${reservation.arrivedAt
        ? html`<p data-testid="checked-in">
            You told the store you are here at ${timeText(reservation.arrivedAt, zone)}${reservation.arrivalNote ? ` (${reservation.arrivalNote})` : ""}.
          </p>`
        : html`<form onSubmit=${checkIn}>
            <div class="field">
              <label for="note">Note for the staff <span class="field-hint">Optional, e.g. car bay 4</span></label>
              <input id="note" maxlength="200" value=${note} onInput=${(e) => setNote(e.currentTarget.value)} />
            </div>
            <button type="submit" disabled=${busy}>I'm here</button>
          </form>`}
      <div class="actions">
        ${confirming
          ? html`<p id="cancel-question">Cancel this reservation? The units go back on sale.</p>
              <button type="button" class="danger" aria-describedby="cancel-question" disabled=${busy}
                onClick=${() => run(CANCEL, { id: reservation.id }, "Your reservation is cancelled.")}>
                Yes, cancel it
              </button>
              <button type="button" class="secondary" onClick=${() => setConfirming(false)}>Keep it</button>`
          : html`<button type="button" class="secondary" onClick=${() => setConfirming(true)}>
              Cancel reservation
            </button>`}
      </div>
    </section>
  `;
}

mount(App);
