// /ops: the figures against the seed's targets (kpis), each channel account's intake health,
// the dead letters (intake messages, POS webhook deliveries, WMS movements) with replay and
// discard, open stock discrepancies, and the reservation policy. Ops mutations only, as any ops
// client would call them.

import {
  SignIn,
  Session,
  announce,
  claimsOf,
  dateTimeText,
  describeError,
  gql,
  html,
  mount,
  mountSession,
  percent,
  spokenDuration,
  tokens,
  useEffect,
  useState,
} from "./common.js";

const CONSOLE = "ops";

const FIGURES = `
  reservationSuccess { asked reserved outOfStock limitExceeded badInput technicalFailures rate
                       rateWhereStockExisted target met }
  timeToReady { count p50Seconds p90Seconds meanSeconds targetSeconds shareWithinTarget meanWithinTarget }
  pickupWait { count meanSeconds p90Seconds targetSeconds meanWithinTarget }
  endings { ended collected cancelled expired noShows picked shortPicked expiryRate cancelRate
            noShowRate shortPickRate }
`;
const KPIS = `
query($since: DateTime) {
  kpis(since: $since) {
    since until
    ${FIGURES}
    readyToCollected { count meanSeconds p90Seconds }
    stockAccuracy { overall { lines ok rate } pick { lines ok rate } reconciliation { lines ok rate }
                    perStore { storeId overall { lines rate } } }
    targets { reservationSuccessRate pickupWaitSeconds stockAccuracy readySeconds }
    perStore { storeId figures { ${FIGURES} } }
  }
}`;
const HEALTH = `
query {
  intakeHealthByAccount {
    channel account received orders accepted ignored rejected dead discarded waiting duplicates
    signatureFailures oversized backlogRefusals fetchErrors backlog oldestWaitingSeconds
    p50Seconds p99Seconds failures { status code count impact }
  }
}`;
const DEAD_INTAKE = `
query {
  intakeMessages(status: [DEAD], orderBy: IMPACT_DESC, first: 50) {
    id channel account topic receivedAt attempts impact lastError { code message }
    order { externalId }
  }
}`;
const DEAD_WEBHOOKS = `
query {
  webhookDeliveries(status: DEAD, orderBy: IMPACT_DESC, first: 50) {
    id eventType storeId url attempts lastStatusCode lastError createdAt impact
  }
}`;
const DEAD_MOVEMENTS = `
query {
  wmsMovements(status: DEAD, orderBy: IMPACT_DESC, first: 50) {
    id storeId sku type quantity attempts lastError occurredAt impact
  }
}`;
const REPLAY_INTAKE = "mutation($id: ID!) { replayIntakeMessage(id: $id) { id status } }";
const DISCARD_INTAKE = `
mutation($id: ID!, $reason: String!) { discardIntakeMessage(id: $id, reason: $reason) { id status } }`;
const REPLAY_WEBHOOK = "mutation($id: ID!) { replayWebhookDelivery(id: $id) { id status } }";
const REPLAY_MOVEMENT = "mutation($id: ID!) { replayWmsMovement(id: $id) { id status } }";
const DISCARD_WEBHOOK = `
mutation($id: ID!, $reason: String!) { discardWebhookDelivery(id: $id, reason: $reason) { id status } }`;
const DISCARD_MOVEMENT = `
mutation($id: ID!, $reason: String!) { discardWmsMovement(id: $id, reason: $reason) { id status } }`;
const DISCREPANCIES = `
query {
  stockDiscrepancies(status: OPEN, first: 50) {
    id storeId sku kind roposValue wmsValue detectedAt
  }
}`;
const RESOLVE = `
mutation($id: ID!, $note: String!) { resolveStockDiscrepancy(id: $id, note: $note) { id status } }`;
const POLICY_FIELDS = `
  defaultHoldSeconds allowedHoldSeconds maxActiveReservationsPerCustomer maxUnitsPerSkuPerCustomer
  expiryWarningSeconds maxStoresPerGroup pickupWindowSeconds allowPickupWithoutReady
  readyTargetSeconds
`;
const POLICY = `query { reservationPolicy { ${POLICY_FIELDS} } }`;
const UPDATE_POLICY = `
mutation($input: ReservationPolicyInput!) { updateReservationPolicy(input: $input) { ${POLICY_FIELDS} } }`;
const CHECK = "query { webhookDeliveries(first: 1) { id } }";

function App() {
  const [token, setToken] = useState(() => tokens.get(CONSOLE));
  const claims = token ? claimsOf(token) : null;
  const signOut = () => {
    tokens.clear(CONSOLE);
    setToken(null);
  };
  useEffect(() => {
    mountSession(claims ? html`<${Session} who=${`ops: ${claims.sub}`} onSignOut=${signOut} />` : null);
  }, [token]);
  if (!token || !claims) {
    return html`<${SignIn}
      title="Sign in to operations"
      roleHelp="Paste an ops token."
      hint="For the demo: ropos token --role ops"
      accepts=${(c) => (c.role === "ops" ? null : `This is a ${c.role} token; operations need an ops token.`)}
      check=${(t) => gql(t, CHECK)}
      onSignedIn=${(t) => {
        tokens.set(CONSOLE, t);
        setToken(t);
      }}
    />`;
  }
  return html`
    <nav class="ops-nav" aria-label="Sections">
      <ul>
        <li><a href="#kpis">Figures</a></li>
        <li><a href="#intake">Intake health</a></li>
        <li><a href="#dead-letters">Dead letters</a></li>
        <li><a href="#discrepancies">Stock discrepancies</a></li>
        <li><a href="#policy">Reservation policy</a></li>
      </ul>
    </nav>
    <${Kpis} token=${token} />
    <${IntakeHealth} token=${token} />
    <${DeadLetters} token=${token} />
    <${Discrepancies} token=${token} />
    <${Policy} token=${token} />
  `;
}

/** Load a query, and again on demand; the API's error is shown as it says it. */
function useQuery(token, query, variables) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const load = () => {
    setState((s) => ({ ...s, loading: true }));
    return gql(token, query, variables).then(
      (data) => setState({ data, error: null, loading: false }),
      (error) => setState({ data: null, error: describeError(error), loading: false }),
    );
  };
  useEffect(() => {
    load();
  }, [token, JSON.stringify(variables || {})]);
  return { ...state, reload: load };
}

function Section({ id, title, onRefresh, children }) {
  return html`
    <section class="card" id=${id} aria-labelledby=${`${id}-title`} tabindex="-1">
      <div class="item-head">
        <h2 id=${`${id}-title`}>${title}</h2>
        ${onRefresh && html`<button type="button" class="secondary" onClick=${onRefresh} aria-label=${`Refresh ${title.toLowerCase()}`}>Refresh</button>`}
      </div>
      ${children}
    </section>
  `;
}

function Problem({ text }) {
  return text ? html`<div class="notice notice-error" role="alert"><p>${text}</p></div>` : null;
}

function Outcome({ text }) {
  return text ? html`<div class="notice notice-ok" role="status"><p>${text}</p></div>` : null;
}

// --- KPIs -----------------------------------------------------------------------------------

const WINDOWS = [
  { value: "1", label: "Last 24 hours" },
  { value: "7", label: "Last 7 days" },
  { value: "30", label: "Last 30 days" },
];

const seconds = (s) => (s === null || s === undefined ? "–" : spokenDuration(s));

function Verdict({ met }) {
  if (met === null || met === undefined) return html`<span class="muted">no data yet</span>`;
  return met
    ? html`<span class="verdict-met">on target</span>`
    : html`<span class="verdict-missed">below target</span>`;
}

function Kpi({ title, value, target, met, children }) {
  const tone = met === true ? " met" : met === false ? " missed" : "";
  return html`
    <div class=${`kpi${tone}`}>
      <h3>${title}</h3>
      <p class="value">${value}</p>
      <p>Target ${target} · <${Verdict} met=${met} /></p>
      ${children}
    </div>
  `;
}

function Kpis({ token }) {
  const [days, setDays] = useState("7");
  const [since, setSince] = useState(null);
  const { data, error, reload } = useQuery(token, KPIS, { since });
  // The window is counted back from the server's own now (kpis.until), not this device's clock.
  const pick = (value) => {
    setDays(value);
    const until = data ? new Date(data.kpis.until) : null;
    setSince(until ? new Date(until.getTime() - Number(value) * 86400000).toISOString() : null);
  };
  const k = data && data.kpis;
  const accuracyMet = k && k.stockAccuracy.overall.rate !== null ? k.stockAccuracy.overall.rate >= k.targets.stockAccuracy : null;
  return html`
    <${Section} id="kpis" title="Figures" onRefresh=${reload}>
      <div class="field">
        <label for="window">Window</label>
        <select id="window" value=${days} onChange=${(e) => pick(e.currentTarget.value)}>
          ${WINDOWS.map((w) => html`<option value=${w.value}>${w.label}</option>`)}
        </select>
      </div>
      <${Problem} text=${error} />
      ${k &&
      html`
        <p class="muted">${dateTimeText(k.since)} to ${dateTimeText(k.until)}</p>
        <div class="kpi-grid" data-testid="kpis">
          <${Kpi}
            title="Reservation success (where stock existed)"
            value=${percent(k.reservationSuccess.rateWhereStockExisted)}
            target=${`≥ ${percent(k.targets.reservationSuccessRate)}`}
            met=${k.reservationSuccess.met}
          >
            <p class="muted">${[
              `${k.reservationSuccess.reserved} of ${k.reservationSuccess.asked} reserved`,
              `${k.reservationSuccess.outOfStock} out of stock`,
              `${k.reservationSuccess.limitExceeded} over a limit`,
              `${k.reservationSuccess.badInput} bad input`,
              `${k.reservationSuccess.technicalFailures} technical failures`,
            ].join(" · ")}</p>
          <//>
          <${Kpi}
            title="Time to ready (mean)"
            value=${seconds(k.timeToReady.meanSeconds)}
            target=${`within ${seconds(k.targets.readySeconds)}`}
            met=${k.timeToReady.meanWithinTarget}
          >
            <p class="muted">${[
              `${k.timeToReady.count} made ready`,
              `median ${seconds(k.timeToReady.p50Seconds)}`,
              `p90 ${seconds(k.timeToReady.p90Seconds)}`,
              `${percent(k.timeToReady.shareWithinTarget)} within target`,
            ].join(" · ")}</p>
          <//>
          <${Kpi}
            title="Pickup wait (mean)"
            value=${seconds(k.pickupWait.meanSeconds)}
            target=${`mean under ${seconds(k.targets.pickupWaitSeconds)}`}
            met=${k.pickupWait.meanWithinTarget}
          >
            <p class="muted">${k.pickupWait.count} collected after check-in · p90 ${seconds(k.pickupWait.p90Seconds)}</p>
          <//>
          <${Kpi}
            title="Stock accuracy of reserved items"
            value=${percent(k.stockAccuracy.overall.rate)}
            target=${`≥ ${percent(k.targets.stockAccuracy)}`}
            met=${accuracyMet}
          >
            <p class="muted">${k.stockAccuracy.overall.ok} of ${k.stockAccuracy.overall.lines} lines right ·
              pick ${percent(k.stockAccuracy.pick.rate)} · reconciliation ${percent(k.stockAccuracy.reconciliation.rate)}</p>
          <//>
          <div class="kpi">
            <h3>Endings</h3>
            <p class="value">${k.endings.ended}</p>
            <p class="muted">ended: ${k.endings.collected} collected · ${k.endings.cancelled} cancelled · ${k.endings.expired} expired</p>
            <p class="muted">expiry ${percent(k.endings.expiryRate)} · cancel ${percent(k.endings.cancelRate)} ·
              no-show ${percent(k.endings.noShowRate)} · short pick ${percent(k.endings.shortPickRate)}</p>
          </div>
        </div>
        <h3>Per store</h3>
        ${k.perStore.length === 0 && html`<p class="muted">No store has figures in this window.</p>`}
        ${k.perStore.length > 0 &&
        html`<div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Store</th>
                <th scope="col" class="num">Asked</th>
                <th scope="col" class="num">Success</th>
                <th scope="col" class="num">Time to ready (median)</th>
                <th scope="col" class="num">Pickup wait (mean)</th>
                <th scope="col" class="num">No-show</th>
                <th scope="col" class="num">Short pick</th>
              </tr>
            </thead>
            <tbody>
              ${k.perStore.map(
                (s) => html`<tr>
                  <th scope="row">${s.storeId}</th>
                  <td class="num">${s.figures.reservationSuccess.asked}</td>
                  <td class="num">${percent(s.figures.reservationSuccess.rateWhereStockExisted)}</td>
                  <td class="num">${seconds(s.figures.timeToReady.p50Seconds)}</td>
                  <td class="num">${seconds(s.figures.pickupWait.meanSeconds)}</td>
                  <td class="num">${percent(s.figures.endings.noShowRate)}</td>
                  <td class="num">${percent(s.figures.endings.shortPickRate)}</td>
                </tr>`,
              )}
            </tbody>
          </table>
        </div>`}
      `}
    <//>
  `;
}

// --- intake health --------------------------------------------------------------------------

function IntakeHealth({ token }) {
  const { data, error, reload } = useQuery(token, HEALTH);
  const accounts = data ? data.intakeHealthByAccount : [];
  return html`
    <${Section} id="intake" title="Intake health, last 24 hours" onRefresh=${reload}>
      <${Problem} text=${error} />
      ${data && accounts.length === 0 && html`<p class="muted">No channel account is set up.</p>`}
      ${accounts.length > 0 &&
      html`<div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Account</th>
              <th scope="col" class="num">Received</th>
              <th scope="col" class="num">Accepted</th>
              <th scope="col" class="num">Rejected</th>
              <th scope="col" class="num">Dead</th>
              <th scope="col" class="num">Waiting now</th>
              <th scope="col" class="num">Oldest waiting</th>
              <th scope="col" class="num">p99 to final</th>
              <th scope="col" class="num">Refused at the edge</th>
              <th scope="col">Top failures</th>
            </tr>
          </thead>
          <tbody>
            ${accounts.map(
              (a) => html`<tr>
                <th scope="row">${a.channel} / ${a.account}</th>
                <td class="num">${a.received}</td>
                <td class="num">${a.accepted}</td>
                <td class="num">${a.rejected}</td>
                <td class="num">${a.dead}</td>
                <td class="num">${a.backlog}</td>
                <td class="num">${seconds(a.oldestWaitingSeconds)}</td>
                <td class="num">${seconds(a.p99Seconds)}</td>
                <td class="num">${a.signatureFailures + a.oversized + a.backlogRefusals}</td>
                <td>${a.failures.slice(0, 3).map((f) => `${f.status} ${f.code} × ${f.count}`).join("; ") || "–"}</td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>`}
    <//>
  `;
}

// --- dead letters ---------------------------------------------------------------------------

const tries = (n) => `${n} ${n === 1 ? "try" : "tries"}`;

/** A reason field and its Discard button: nothing is sent until a reason is given. */
function Discard({ id, label, reasons, setReasons, onDiscard }) {
  const reason = reasons[id] || "";
  return html`
    <div class="field">
      <label for=${id}>Reason to discard</label>
      <input id=${id} value=${reason} maxlength="500"
        onInput=${(e) => setReasons({ ...reasons, [id]: e.currentTarget.value })} />
    </div>
    <button type="button" class="danger" disabled=${!reason.trim()} aria-label=${label}
      onClick=${() => onDiscard(reason.trim())}>Discard</button>
  `;
}

function DeadLetters({ token }) {
  const intake = useQuery(token, DEAD_INTAKE);
  const webhooks = useQuery(token, DEAD_WEBHOOKS);
  const movements = useQuery(token, DEAD_MOVEMENTS);
  const [outcome, setOutcome] = useState(null);
  const [problem, setProblem] = useState(null);
  const [reasons, setReasons] = useState({});
  const reloadAll = () => Promise.all([intake.reload(), webhooks.reload(), movements.reload()]);

  const run = async (query, variables, what) => {
    setProblem(null);
    try {
      const data = await gql(token, query, variables);
      const result = Object.values(data)[0];
      const text = `${what}: now ${result.status}.`;
      setOutcome(text);
      announce(text);
      await reloadAll();
    } catch (failure) {
      setProblem(describeError(failure));
    }
  };

  const messages = intake.data ? intake.data.intakeMessages : [];
  // Most impact first, as the API ranks them: a shopper waiting on the store's POS, the units
  // the WMS counts wrong, weighted by how long each has waited.
  const deliveries = webhooks.data ? webhooks.data.webhookDeliveries : [];
  const dead = movements.data ? movements.data.wmsMovements : [];
  return html`
    <${Section} id="dead-letters" title="Dead letters" onRefresh=${reloadAll}>
      <${Problem} text=${problem || intake.error || webhooks.error || movements.error} />
      <${Outcome} text=${outcome} />
      <h3 id="dead-intake">Intake messages (${messages.length}), most impact first</h3>
      ${messages.length === 0 && html`<p class="muted">None.</p>`}
      <ul class="plain-list" aria-labelledby="dead-intake" data-testid="dead-intake">
        ${messages.map(
          (m) => html`<li class="queue-item">
            <p><strong>${m.channel} / ${m.account}</strong> · order ${(m.order && m.order.externalId) || "unread"} ·
              impact ${m.impact.toFixed(1)} · ${tries(m.attempts)} · received ${dateTimeText(m.receivedAt)}</p>
            <p>${m.lastError ? `${m.lastError.code}: ${m.lastError.message || ""}` : "No error recorded."}</p>
            <div class="row">
              <button type="button" onClick=${() => run(REPLAY_INTAKE, { id: m.id }, `Intake message ${m.id} replayed`)}>Replay</button>
              <div class="field">
                <label for=${`reason-${m.id}`}>Reason to discard</label>
                <input id=${`reason-${m.id}`} value=${reasons[m.id] || ""} maxlength="500"
                  onInput=${(e) => setReasons({ ...reasons, [m.id]: e.currentTarget.value })} />
              </div>
              <button type="button" class="danger" disabled=${!(reasons[m.id] || "").trim()}
                onClick=${() => run(DISCARD_INTAKE, { id: m.id, reason: reasons[m.id].trim() }, `Intake message ${m.id} discarded`)}>
                Discard
              </button>
            </div>
          </li>`,
        )}
      </ul>
      <h3 id="dead-webhooks">POS webhook deliveries (${deliveries.length}), most impact first</h3>
      ${deliveries.length === 0 && html`<p class="muted">None.</p>`}
      <ul class="plain-list" aria-labelledby="dead-webhooks" data-testid="dead-webhooks">
        ${deliveries.map(
          (d) => html`<li class="queue-item">
            <p><strong>${d.eventType}</strong> for store ${d.storeId} · impact ${d.impact.toFixed(1)} · ${tries(d.attempts)} · queued ${dateTimeText(d.createdAt)}</p>
            <p>${d.url} · ${d.lastError || (d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : "no answer")}</p>
            <div class="row">
              <button type="button" onClick=${() => run(REPLAY_WEBHOOK, { id: d.id }, `Webhook delivery ${d.id} replayed`)}
                aria-label=${`Replay the ${d.eventType} delivery to store ${d.storeId}`}>Replay</button>
              <${Discard} id=${`reason-webhook-${d.id}`} reasons=${reasons} setReasons=${setReasons}
                label=${`Discard the ${d.eventType} delivery to store ${d.storeId}`}
                onDiscard=${(reason) => run(DISCARD_WEBHOOK, { id: d.id, reason }, `Webhook delivery ${d.id} discarded`)} />
            </div>
          </li>`,
        )}
      </ul>
      <h3 id="dead-movements">WMS movements (${dead.length}), most impact first</h3>
      ${dead.length === 0 && html`<p class="muted">None.</p>`}
      <ul class="plain-list" aria-labelledby="dead-movements" data-testid="dead-movements">
        ${dead.map(
          (m) => html`<li class="queue-item">
            <p><strong>${m.type} ${m.quantity} × ${m.sku}</strong> at store ${m.storeId} · impact ${m.impact.toFixed(1)} · ${tries(m.attempts)} · ${dateTimeText(m.occurredAt)}</p>
            <p>${m.lastError || "No error recorded."}</p>
            <div class="row">
              <button type="button" onClick=${() => run(REPLAY_MOVEMENT, { id: m.id }, `WMS movement ${m.id} replayed`)}
                aria-label=${`Replay movement ${m.id}`}>Replay</button>
              <${Discard} id=${`reason-movement-${m.id}`} reasons=${reasons} setReasons=${setReasons}
                label=${`Discard movement ${m.id}`}
                onDiscard=${(reason) => run(DISCARD_MOVEMENT, { id: m.id, reason }, `WMS movement ${m.id} discarded`)} />
            </div>
          </li>`,
        )}
      </ul>
    <//>
  `;
}

// --- stock discrepancies ------------------------------------------------------------------------

function Discrepancies({ token }) {
  const { data, error, reload } = useQuery(token, DISCREPANCIES);
  const [notes, setNotes] = useState({});
  const [problem, setProblem] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const resolve = async (d) => {
    setProblem(null);
    try {
      await gql(token, RESOLVE, { id: d.id, note: notes[d.id].trim() });
      setOutcome(`Discrepancy of ${d.sku} at ${d.storeId} resolved.`);
      await reload();
    } catch (failure) {
      setProblem(describeError(failure));
    }
  };
  const open = data ? data.stockDiscrepancies : [];
  return html`
    <${Section} id="discrepancies" title="Open stock discrepancies" onRefresh=${reload}>
      <${Problem} text=${problem || error} />
      <${Outcome} text=${outcome} />
      ${data && open.length === 0 && html`<p class="muted">None open.</p>`}
      ${open.length > 0 &&
      html`<div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Store</th><th scope="col">SKU</th><th scope="col">Kind</th>
              <th scope="col" class="num">ROPOS</th><th scope="col" class="num">WMS</th>
              <th scope="col">Found</th><th scope="col">Resolve</th>
            </tr>
          </thead>
          <tbody>
            ${open.map(
              (d) => html`<tr>
                <td>${d.storeId}</td><td>${d.sku}</td><td>${d.kind}</td>
                <td class="num">${d.roposValue ?? "–"}</td><td class="num">${d.wmsValue ?? "–"}</td>
                <td>${dateTimeText(d.detectedAt)}</td>
                <td>
                  <label for=${`note-${d.id}`} class="visually-hidden">What was found and done about ${d.sku} at ${d.storeId}</label>
                  <input id=${`note-${d.id}`} value=${notes[d.id] || ""} placeholder="What was found and done"
                    onInput=${(e) => setNotes({ ...notes, [d.id]: e.currentTarget.value })} />
                  <button type="button" disabled=${!(notes[d.id] || "").trim()} onClick=${() => resolve(d)}>Resolve</button>
                </td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>`}
    <//>
  `;
}

// --- the reservation policy -----------------------------------------------------------------

const POLICY_NUMBERS = [
  ["defaultHoldSeconds", "Default hold (seconds)"],
  ["maxActiveReservationsPerCustomer", "Active reservations per customer"],
  ["maxUnitsPerSkuPerCustomer", "Units of one SKU per customer"],
  ["expiryWarningSeconds", "Expiry warning lead (seconds)"],
  ["maxStoresPerGroup", "Stores one reservation may be split over"],
  ["readyTargetSeconds", "Ready target (seconds)"],
];

function Policy({ token }) {
  const { data, error, reload } = useQuery(token, POLICY);
  const [form, setForm] = useState(null);
  const [problem, setProblem] = useState(null);
  const [outcome, setOutcome] = useState(null);
  useEffect(() => {
    if (!data) return;
    const p = data.reservationPolicy;
    setForm({
      ...Object.fromEntries(POLICY_NUMBERS.map(([key]) => [key, String(p[key])])),
      allowedHoldSeconds: p.allowedHoldSeconds.join(", "),
      pickupWindowSeconds: p.pickupWindowSeconds === null ? "" : String(p.pickupWindowSeconds),
      allowPickupWithoutReady: p.allowPickupWithoutReady,
    });
  }, [data]);
  const save = async (event) => {
    event.preventDefault();
    setProblem(null);
    setOutcome(null);
    const input = {
      ...Object.fromEntries(POLICY_NUMBERS.map(([key]) => [key, Number(form[key])])),
      allowedHoldSeconds: form.allowedHoldSeconds.split(",").map((s) => Number(s.trim())).filter((n) => n),
      pickupWindowSeconds: form.pickupWindowSeconds.trim() ? Number(form.pickupWindowSeconds) : null,
      allowPickupWithoutReady: form.allowPickupWithoutReady,
    };
    try {
      await gql(token, UPDATE_POLICY, { input });
      setOutcome("The policy is saved; every replica applies it within its cache time.");
      await reload();
    } catch (failure) {
      setProblem(describeError(failure));
    }
  };
  return html`
    <${Section} id="policy" title="Reservation policy" onRefresh=${reload}>
      <${Problem} text=${problem || error} />
      <${Outcome} text=${outcome} />
      ${form &&
      html`<form onSubmit=${save}>
        <div class="kpi-grid">
          ${POLICY_NUMBERS.map(
            ([key, label]) => html`<div class="field">
              <label for=${`policy-${key}`}>${label}</label>
              <input id=${`policy-${key}`} type="number" inputmode="numeric" min="0" value=${form[key]}
                onInput=${(e) => setForm({ ...form, [key]: e.currentTarget.value })} />
            </div>`,
          )}
          <div class="field">
            <label for="policy-allowedHoldSeconds">Allowed holds (seconds, comma separated)</label>
            <input id="policy-allowedHoldSeconds" value=${form.allowedHoldSeconds}
              onInput=${(e) => setForm({ ...form, allowedHoldSeconds: e.currentTarget.value })} />
          </div>
          <div class="field">
            <label for="policy-pickupWindowSeconds">Pickup window after ready (seconds; empty: none)</label>
            <input id="policy-pickupWindowSeconds" type="number" inputmode="numeric" min="0" value=${form.pickupWindowSeconds}
              onInput=${(e) => setForm({ ...form, pickupWindowSeconds: e.currentTarget.value })} />
          </div>
          <div class="field row">
            <input id="policy-allowPickupWithoutReady" type="checkbox" checked=${form.allowPickupWithoutReady}
              onChange=${(e) => setForm({ ...form, allowPickupWithoutReady: e.currentTarget.checked })} />
            <label for="policy-allowPickupWithoutReady">Allow collecting without the ready step</label>
          </div>
        </div>
        <button type="submit">Save the policy</button>
      </form>`}
    <//>
  `;
}

mount(App);
