// /shop: the shopper, on a phone. Find the stores near you (this device's location, or a place
// picked from the store list) that have your SKUs, reserve at one, then follow the reservation
// on its own page (reservation.js).

import {
  ACTIVE,
  SignIn,
  Session,
  StatusBadge,
  announce,
  claimsOf,
  clockText,
  describeError,
  gql,
  html,
  mount,
  mountSession,
  randomKey,
  spacedCode,
  spokenDuration,
  tokens,
  useEffect,
  useRef,
  useState,
} from "./common.js";

const STORES = "query { stores(first: 100) { id name lat lon timezone } }";
const POLICY = "query { reservationPolicy { defaultHoldSeconds allowedHoldSeconds } }";
const AVAILABILITY = `
query($skus: [String!]!, $quantities: [Int!], $near: GeoPointInput!) {
  availability(skus: $skus, quantities: $quantities, near: $near, radiusKm: 25, first: 10) {
    store { id name address lat lon timezone }
    distanceKm
    canServeAll
    lines { sku available requested }
  }
}`;
const RESERVE = `
mutation($input: ReserveInput!) {
  reserve(input: $input) { id reservations { id code storeId status } }
}`;
const MINE = `
query {
  myReservations(activeOnly: true, first: 20) {
    id code status storeId secondsRemaining store { name } lines { sku quantity }
  }
}`;

const CONSOLE = "shop";

function App() {
  const [token, setToken] = useState(() => tokens.get(CONSOLE));
  const claims = token ? claimsOf(token) : null;

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
      title="Sign in to reserve"
      roleHelp="Paste your customer token."
      hint="For the demo: ropos token --role customer --sub alice"
      accepts=${(c) =>
        c.role === "customer"
          ? null
          : `This is a ${c.role} token; the shop needs a customer token (ropos token --role customer --sub alice).`}
      check=${(t) => gql(t, MINE)}
      onSignedIn=${(t) => {
        tokens.set(CONSOLE, t);
        setToken(t);
      }}
    />`;
  }
  return html`
    <${FindAndReserve} token=${token} />
    <${MyReservations} token=${token} />
  `;
}

/** A place typed or picked from the store list: the store it names, nearest match first. */
function storeNamed(stores, text) {
  const wanted = text.trim().toLowerCase();
  if (!wanted) return null;
  return (
    stores.find((s) => s.name.toLowerCase() === wanted || s.id.toLowerCase() === wanted) ||
    stores.find((s) => s.name.toLowerCase().includes(wanted)) ||
    null
  );
}

function FindAndReserve({ token }) {
  const [stores, setStores] = useState([]);
  const [policy, setPolicy] = useState(null);
  const [place, setPlace] = useState("");
  const [located, setLocated] = useState(null); // {lat, lon} from the device
  const [lines, setLines] = useState([{ sku: "", quantity: 1 }]);
  const [hold, setHold] = useState("");
  const [results, setResults] = useState(null);
  const [searchedNear, setSearchedNear] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [reserving, setReserving] = useState(null);
  const resultsHeading = useRef(null);
  const keyFor = useRef({}); // store id -> idempotency key: a retried click is the same reserve

  useEffect(() => {
    gql(token, STORES).then((d) => setStores(d.stores), (e) => setError(describeError(e)));
    gql(token, POLICY).then(
      (d) => {
        setPolicy(d.reservationPolicy);
        setHold(String(d.reservationPolicy.defaultHoldSeconds));
      },
      (e) => setError(describeError(e)),
    );
  }, [token]);

  const locate = () => {
    setError(null);
    if (!navigator.geolocation) {
      setError("This browser cannot tell where you are: type a place instead.");
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (position) => {
        setLocated({ lat: position.coords.latitude, lon: position.coords.longitude });
        setPlace("");
        announce("Using your location.");
      },
      (failure) => setError(`Your location is not available (${failure.message}): type a place instead.`),
      { timeout: 10000, maximumAge: 60000 },
    );
  };

  const setLine = (index, change) =>
    setLines(lines.map((line, i) => (i === index ? { ...line, ...change } : line)));

  const search = async (event) => {
    event.preventDefault();
    setError(null);
    const wanted = lines
      .map((l) => ({ sku: l.sku.trim().toUpperCase(), quantity: Number(l.quantity) }))
      .filter((l) => l.sku);
    if (!wanted.length) {
      setError("Type at least one SKU, e.g. SKU-00100.");
      return;
    }
    let near = located;
    let label = "your location";
    if (place.trim()) {
      const store = storeNamed(stores, place);
      if (!store) {
        setError(`No store is called “${place.trim()}”: pick a place from the list.`);
        return;
      }
      near = { lat: store.lat, lon: store.lon };
      label = store.name;
    }
    if (!near) {
      setError("Say where you are: use your location, or type a place from the list.");
      return;
    }
    setBusy(true);
    try {
      const data = await gql(token, AVAILABILITY, {
        skus: wanted.map((l) => l.sku),
        quantities: wanted.map((l) => l.quantity),
        near,
      });
      setResults({ stores: data.availability, lines: wanted });
      setSearchedNear(label);
      keyFor.current = {};
      const all = data.availability.filter((a) => a.canServeAll).length;
      announce(`${data.availability.length} stores near ${label}; ${all} have everything.`);
      // The results to the top of a phone's screen, and the focus with them.
      requestAnimationFrame(() => {
        const heading = resultsHeading.current;
        if (!heading) return;
        heading.scrollIntoView({ block: "start" });
        heading.focus({ preventScroll: true });
      });
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };

  const reserve = async (store) => {
    setError(null);
    setReserving(store.id);
    keyFor.current[store.id] = keyFor.current[store.id] || randomKey("shop");
    try {
      const data = await gql(token, RESERVE, {
        input: {
          lines: results.lines,
          storeId: store.id,
          holdSeconds: hold ? Number(hold) : null,
          idempotencyKey: keyFor.current[store.id],
        },
      });
      const [first] = data.reserve.reservations;
      announce(`Reserved at ${store.name}. Opening your reservation.`);
      location.assign(`/shop/reservations/${encodeURIComponent(first.id)}`);
    } catch (failure) {
      setError(describeError(failure));
      setReserving(null);
    }
  };

  return html`
    <section class="card" aria-labelledby="find-title">
      <h2 id="find-title">Find a store near you</h2>
      <form onSubmit=${search} novalidate>
        <fieldset class="field">
          <legend><strong>Where are you?</strong></legend>
          <div class="row">
            <button type="button" class="secondary" onClick=${locate}>Use my location</button>
            ${located && !place && html`<span class="muted">Using your location.</span>`}
          </div>
          <div class="field">
            <label for="place">Or a place <span class="field-hint">A store or area from the list, e.g. Oxford Circus</span></label>
            <input
              id="place"
              list="store-names"
              autocomplete="off"
              value=${place}
              onInput=${(e) => setPlace(e.currentTarget.value)}
            />
            <datalist id="store-names">
              ${stores.map((s) => html`<option value=${s.name}></option>`)}
            </datalist>
          </div>
        </fieldset>
        <fieldset class="field">
          <legend><strong>What do you want?</strong></legend>
          ${lines.map(
            (line, i) => html`
              <div class="sku-row">
                <div class="field">
                  <label for=${`sku-${i}`}>SKU ${lines.length > 1 ? i + 1 : ""}</label>
                  <input
                    id=${`sku-${i}`}
                    autocomplete="off"
                    autocapitalize="characters"
                    spellcheck="false"
                    placeholder="SKU-00100"
                    value=${line.sku}
                    onInput=${(e) => setLine(i, { sku: e.currentTarget.value })}
                  />
                </div>
                <div class="field">
                  <label for=${`qty-${i}`}>Units</label>
                  <input
                    id=${`qty-${i}`}
                    type="number"
                    inputmode="numeric"
                    min="1"
                    max="100"
                    value=${line.quantity}
                    onInput=${(e) => setLine(i, { quantity: e.currentTarget.value })}
                  />
                </div>
                <button
                  type="button"
                  class="secondary"
                  aria-label=${`Remove SKU ${i + 1}`}
                  disabled=${lines.length === 1}
                  onClick=${() => setLines(lines.filter((_, j) => j !== i))}
                >
                  ✕
                </button>
              </div>
            `,
          )}
          <button
            type="button"
            class="secondary"
            onClick=${() => setLines([...lines, { sku: "", quantity: 1 }])}
          >
            Add another SKU
          </button>
        </fieldset>
        ${policy &&
        html`<div class="field">
          <label for="hold">Hold it for</label>
          <select id="hold" value=${hold} onChange=${(e) => setHold(e.currentTarget.value)}>
            ${policy.allowedHoldSeconds.map(
              (s) => html`<option value=${String(s)}>${spokenDuration(s)}</option>`,
            )}
          </select>
        </div>`}
        ${error && html`<div class="notice notice-error" role="alert"><p>${error}</p></div>`}
        <button type="submit" disabled=${busy}>${busy ? "Searching…" : "Find stores"}</button>
      </form>
    </section>
    ${results &&
    html`
      <section class="card" aria-labelledby="results-title">
        <h2 id="results-title" tabindex="-1" ref=${resultsHeading}>
          Stores near ${searchedNear}
        </h2>
        ${results.stores.length === 0 &&
        html`<p>No store within 25 km has these SKUs. Try another place.</p>`}
        <ul class="plain-list">
          ${results.stores.map(
            (a) => html`
              <li class=${`store-result${a.canServeAll ? " can-serve" : ""}`}>
                <h3>${a.store.name}</h3>
                ${a.store.address && html`<p>${a.store.address}</p>`}
                <p class="muted">${a.distanceKm.toFixed(1)} km away · store ${a.store.id}</p>
                <p>
                  ${a.canServeAll
                    ? html`<strong class="verdict-met">Has everything</strong>`
                    : html`<strong class="short">Not everything</strong>`}
                </p>
                <ul class="availability">
                  ${a.lines.map(
                    (l) => html`<li class=${l.available < l.requested ? "short" : ""}>
                      ${l.sku}: ${l.available} available (you want ${l.requested})
                    </li>`,
                  )}
                </ul>
                ${a.canServeAll &&
                html`<div class="actions">
                  <button
                    type="button"
                    disabled=${reserving !== null}
                    onClick=${() => reserve(a.store)}
                  >
                    ${reserving === a.store.id ? "Reserving…" : `Reserve at ${a.store.name}`}
                  </button>
                </div>`}
              </li>
            `,
          )}
        </ul>
      </section>
    `}
  `;
}

function MyReservations({ token }) {
  const [mine, setMine] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    gql(token, MINE).then(
      (d) => setMine(d.myReservations),
      (e) => setError(describeError(e)),
    );
  }, [token]);
  if (error) return html`<div class="notice notice-error" role="alert"><p>${error}</p></div>`;
  if (!mine || !mine.length) return null;
  return html`
    <section class="card" aria-labelledby="mine-title">
      <h2 id="mine-title">Your reservations</h2>
      <ul class="plain-list">
        ${mine
          .filter((r) => ACTIVE.has(r.status))
          .map(
            (r) => html`<li>
              <a href=${`/shop/reservations/${encodeURIComponent(r.id)}`}>
                <span class="code">${spacedCode(r.code)}</span> at ${r.store ? r.store.name : r.storeId}
              </a>
              ${" "}<${StatusBadge} status=${r.status} />
              <span class="muted"> · ${clockText(r.secondsRemaining)} left</span>
            </li>`,
          )}
      </ul>
    </section>
  `;
}

mount(App);
