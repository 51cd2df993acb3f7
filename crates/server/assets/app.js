// Boxoffice pages: the little script that makes them move. The pages are drawn on the server;
// this file selects seats, follows the live seat map over the WebSocket, counts a hold down,
// and sends forms to the JSON API (with the CSRF header), explaining any problem in words.
"use strict";

(function () {
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  function cookie(name) {
    const found = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  // A fresh key per distinct request, reused if the same request is sent again (a double
  // click, a retry after a network error), so the server does it once.
  const keys = new Map();
  function idempotencyKey(method, path, body) {
    const id = method + " " + path + " " + body;
    if (!keys.has(id)) {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      keys.set(id, Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""));
    }
    return keys.get(id);
  }

  async function api(method, path, body, headers) {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const sent = Object.assign({ accept: "application/json" }, headers || {});
    if (text !== undefined) sent["content-type"] = "application/json";
    const csrf = cookie("boxoffice_csrf");
    if (csrf) sent["x-csrf-token"] = csrf;
    if (method === "POST") sent["idempotency-key"] = idempotencyKey(method, path, text || "");
    let response;
    try {
      response = await fetch(path, { method, headers: sent, body: text, credentials: "same-origin" });
    } catch (e) {
      return { ok: false, status: 0, data: { type: "network", detail: "" } };
    }
    let data = null;
    const raw = await response.text();
    try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data, headers: response.headers };
  }

  // What went wrong, in words a person understands.
  function describe(result) {
    const p = result.data || {};
    const retry = result.headers && result.headers.get("retry-after");
    switch (p.type) {
      case "network": return "We could not reach Boxoffice. Check your connection and try again.";
      case "seat_unavailable": return "Sorry, someone else just took some of those seats or places. The map shows what is still free.";
      case "hold_expired": return "Your hold ran out and the seats were released. Please choose seats again.";
      case "hold_already_booked": return "These seats are already booked. Look in My bookings.";
      case "payment_declined": return "Your card was declined and nothing was charged. Your seats are still held: try another card.";
      case "not_on_sale": return "Tickets for this show are not on sale right now.";
      case "unauthorized": return "Please sign in first.";
      case "email_taken": return "There is already an account with this e-mail. Sign in instead?";
      case "rate_limited":
      case "throttled": return "You are going a little fast. Please wait " + (retry || "a few") + " seconds and try again.";
      case "admission_required": return "This sale has a waiting room. Taking you to the line…";
      case "schedule_conflict": return "Some of these shows would clash with shows already at the venue: " +
        (p.conflicts || []).slice(0, 5).map((c) => c.starts_at).join(", ") + ".";
      case "validation":
        return "Please check: " + (p.errors || []).map((e) => e.field.replace(/_/g, " ") + " " + e.message).join("; ") + ".";
      default:
        return p.detail ? p.detail.charAt(0).toUpperCase() + p.detail.slice(1) + "." : "Something went wrong. Please try again.";
    }
  }

  function say(message, kind) {
    const notice = $("#notice");
    if (!notice) return;
    notice.textContent = message;
    notice.className = "notice " + (kind || "bad");
    notice.hidden = !message;
    if (message) notice.scrollIntoView({ block: "nearest" });
  }

  function markFields(form, problem) {
    $$("[aria-invalid]", form).forEach((el) => el.removeAttribute("aria-invalid"));
    $$(".field-error", form).forEach((el) => el.remove());
    ((problem && problem.errors) || []).forEach((error) => {
      const input = form.elements[error.field.split(".")[0]];
      if (!input || !input.setAttribute) return;
      input.setAttribute("aria-invalid", "true");
      const note = document.createElement("span");
      note.className = "field-error";
      note.id = "err-" + error.field.replace(/\W/g, "-");
      note.textContent = error.message;
      input.setAttribute("aria-describedby", note.id);
      input.insertAdjacentElement("afterend", note);
    });
  }

  function fail(result, form) {
    if (result.status === 401 && !form) {
      location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search);
      return;
    }
    say(describe(result));
    if (form) markFields(form, result.data);
  }

  // A form's fields as the API's JSON body.
  function formBody(form) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) continue;
      const value = el.value.trim();
      const type = el.dataset.type;
      if (type === "json-spread") {
        Object.assign(body, JSON.parse(value || "{}"));
      } else if (el.type === "checkbox") {
        (body[el.name] = body[el.name] || []).push(value);
      } else if (value === "") {
        // An empty required field goes to the API, which says what it must be.
        if (el.required) body[el.name] = "";
        continue;
      } else if (type === "int") {
        body[el.name] = Number(value);
      } else if (type === "list") {
        body[el.name] = value.split(",").map((v) => v.trim()).filter(Boolean);
      } else {
        body[el.name] = value;
      }
    }
    return body;
  }

  function wireForms() {
    $$("form[data-api]").forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        let body;
        try { body = formBody(form); } catch (e) { say("The layout is not valid JSON: " + e.message); return; }
        const button = $("button[type=submit]", form);
        if (button) button.disabled = true;
        const result = await api("POST", form.dataset.api, body);
        if (button) button.disabled = false;
        if (!result.ok) return fail(result, form);
        const next = form.dataset.next || "/";
        location.href = next.replace("{id}", (result.data && result.data.id) || "");
      });
    });
  }

  // A sign-in that lapsed (the access cookie lives minutes, the refresh cookie a month):
  // renew it once and show the page again.
  async function renewSignIn() {
    const lapsed = document.body.dataset.signedIn === "no" && cookie("boxoffice_csrf");
    const renew = $("[data-renew]");
    if (!lapsed && !renew) return;
    const last = Number(sessionStorage.getItem("renewed-at") || 0);
    if (Date.now() - last < 10000) { if ($("#renewing")) $("#renewing").hidden = true; return; }
    sessionStorage.setItem("renewed-at", String(Date.now()));
    const result = await api("POST", "/api/v1/auth/refresh");
    if (result.ok) { location.reload(); return; }
    document.cookie = "boxoffice_csrf=; Max-Age=0; Path=/";
    if ($("#renewing")) $("#renewing").hidden = true;
  }

  function wireAccountButtons() {
    $$("[data-sign-out]").forEach((button) => button.addEventListener("click", async () => {
      await api("POST", "/api/v1/auth/logout");
      location.href = "/";
    }));
    $$("[data-cancel-booking]").forEach((button) => button.addEventListener("click", async () => {
      if (!confirm("Cancel this booking? The seats go back on sale; the show's refund policy decides how much comes back.")) return;
      const choice = $('[data-refund-to="' + button.dataset.cancelBooking + '"]');
      const result = await api("POST", "/api/v1/bookings/" + button.dataset.cancelBooking + "/cancel",
        { refund_to: choice ? choice.value : "card" });
      if (!result.ok) return fail(result);
      location.reload();
    }));
    $$("[data-reveal-card]").forEach((button) => button.addEventListener("click", async () => {
      const result = await api("POST", "/api/v1/scratch-cards/" + button.dataset.revealCard + "/reveal");
      if (!result.ok) return fail(result);
      location.reload();
    }));
    $$("[data-leave-waitlist]").forEach((button) => button.addEventListener("click", async () => {
      const result = await api("DELETE", "/api/v1/waitlist/" + button.dataset.leaveWaitlist);
      if (!result.ok) return fail(result);
      location.reload();
    }));
    const waitlist = $("#waitlist-form");
    if (waitlist) waitlist.addEventListener("submit", async (event) => {
      event.preventDefault();
      const showId = $("#shop").dataset.show;
      const body = { quantity: Number(waitlist.elements.quantity.value), together: waitlist.elements.together.checked };
      if (waitlist.elements.category.value) body.category = waitlist.elements.category.value;
      const result = await api("POST", "/api/v1/shows/" + showId + "/waitlist", body);
      if (!result.ok) return fail(result, waitlist);
      location.reload();
    });
    $$("[data-print]").forEach((button) => button.addEventListener("click", () => window.print()));
    $$("[data-admin-action]").forEach((button) => button.addEventListener("click", async () => {
      const result = await api("POST", button.dataset.adminAction);
      if (!result.ok) return fail(result);
      location.reload();
    }));
  }

  // The live channel: one WebSocket per 16 shows (the server's limit per socket), reconnected
  // with a growing pause; every (re)connection starts with a fresh snapshot.
  function follow(showIds, onMessage, onState) {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/ws";
    for (let i = 0; i < showIds.length; i += 16) {
      const group = showIds.slice(i, i + 16);
      let pause = 500;
      const open = () => {
        const socket = new WebSocket(url);
        socket.onopen = () => {
          pause = 500;
          group.forEach((id) => socket.send(JSON.stringify({ type: "subscribe", show_id: id })));
          onState(true);
        };
        socket.onmessage = (event) => {
          let message;
          try { message = JSON.parse(event.data); } catch (e) { return; }
          // Changes sent together arrive as one array, in order.
          (Array.isArray(message) ? message : [message]).forEach(onMessage);
        };
        socket.onclose = () => {
          onState(false);
          setTimeout(open, pause);
          pause = Math.min(pause * 2, 15000);
        };
      };
      open();
    }
  }

  function liveState(connected) {
    const state = $("#live-state");
    if (!state) return;
    state.textContent = connected ? "Live: seats change colour as people buy." : "Reconnecting to live updates…";
    state.dataset.connected = connected ? "yes" : "no";
  }

  const STATES = ["free", "held", "sold", "blocked"];

  function shop() {
    const root = $("#shop");
    if (!root) return;
    const showId = root.dataset.show;
    const currency = root.dataset.currency;
    const max = Number(root.dataset.max || 10);
    const watchOnly = root.dataset.watch === "yes";
    const seats = new Map($$(".seat", root).map((el) => [el.dataset.seat, el]));
    const chosen = new Set();

    function setState(id, state) {
      const el = seats.get(id);
      if (!el) return;
      STATES.forEach((s) => el.classList.remove(s));
      el.classList.add(state);
      if (state !== "free" && chosen.has(id)) {
        chosen.delete(id);
        el.classList.remove("chosen");
        el.setAttribute("aria-checked", "false");
        say("Seat " + el.dataset.label + " was just taken by someone else.", "warn");
        summarize();
      }
    }

    function summarize() {
      const summary = $("#selection-summary");
      const button = $("#hold-selected");
      if (!summary || !button) return;
      const labels = Array.from(chosen, (id) => seats.get(id).dataset.label);
      summary.textContent = labels.length
        ? labels.length + (labels.length === 1 ? " seat: " : " seats: ") + labels.join(", ")
        : "No seats selected.";
      button.disabled = labels.length === 0;
    }

    function toggle(el) {
      if (watchOnly) return;
      const id = el.dataset.seat;
      if (chosen.has(id)) {
        chosen.delete(id);
      } else {
        if (!el.classList.contains("free")) { say("Seat " + el.dataset.label + " is taken.", "warn"); return; }
        if (chosen.size >= max) { say("You can buy up to " + max + " tickets in one order.", "warn"); return; }
        chosen.add(id);
      }
      el.classList.toggle("chosen", chosen.has(id));
      el.setAttribute("aria-checked", chosen.has(id) ? "true" : "false");
      say("");
      summarize();
    }

    seats.forEach((el) => {
      el.addEventListener("click", () => toggle(el));
      el.addEventListener("keydown", (event) => {
        if (event.key === " " || event.key === "Enter") { event.preventDefault(); toggle(el); }
      });
    });

    function counts(categories, areas) {
      (categories || []).forEach((c) => {
        const cell = $('.legend [data-category="' + CSS.escape(c.category) + '"] [data-free]', root);
        if (cell) cell.textContent = c.free;
      });
      (areas || []).forEach((a) => {
        const cell = $('[data-area="' + CSS.escape(a.area_id || a.id) + '"] [data-free]', root);
        if (cell) cell.textContent = a.free;
      });
    }

    follow([showId], (message) => {
      if (message.show_id && message.show_id !== showId) return;
      switch (message.type) {
        case "snapshot":
          (message.seat_map.seats || []).forEach((s) => setState(s.id, s.state));
          counts(message.seat_map.availability, message.seat_map.areas);
          break;
        case "seat_held": (message.seat_ids || []).forEach((id) => setState(id, "held")); break;
        case "seat_released": (message.seat_ids || []).forEach((id) => setState(id, "free")); break;
        case "seat_sold": (message.seat_ids || []).forEach((id) => setState(id, "sold")); break;
        case "availability": counts(message.categories, message.areas); break;
        case "show_changed": say("The organizer changed this show. Reload the page to see the latest details.", "warn"); break;
        case "show_cancelled": location.reload(); break;
        case "resync": break; // a fresh snapshot follows
        case "waitlist_offered": {
          const waitlist = $("#waitlist");
          if (waitlist && waitlist.dataset.entry === message.entry_id) location.reload();
          break;
        }
      }
    }, liveState);

    if (watchOnly) return;

    async function hold(request) {
      const token = sessionStorage.getItem("admission:" + showId);
      const headers = token ? { "x-admission-token": token } : {};
      const promo = $("#promo-code");
      const code = promo && promo.value.trim() ? { promo_code: promo.value.trim() } : {};
      const points = $("#redeem-points");
      const spend = points && Number(points.value) > 0 ? { redeem_points: Number(points.value) } : {};
      const result = await api("POST", "/api/v1/holds", Object.assign({ show_id: showId }, request, code, spend), headers);
      if (result.ok) { location.href = "/holds/" + result.data.id; return; }
      if (result.data && result.data.type === "admission_required") {
        say(describe(result), "warn");
        location.href = "/shows/" + showId + "/queue";
        return;
      }
      if (result.data && result.data.seat_ids) result.data.seat_ids.forEach((id) => setState(id, "held"));
      fail(result);
    }

    const holdButton = $("#hold-selected");
    if (holdButton) holdButton.addEventListener("click", () => hold({ seat_ids: Array.from(chosen) }));
    const best = $("#best-form");
    if (best) best.addEventListener("submit", (event) => {
      event.preventDefault();
      hold({ best_available: { category: best.elements.category.value, quantity: Number(best.elements.quantity.value) } });
    });
    const areas = $("#area-form");
    if (areas) areas.addEventListener("submit", (event) => {
      event.preventDefault();
      const wanted = $$("input[type=number]", areas)
        .map((input) => ({ area_id: input.name, quantity: Number(input.value) }))
        .filter((a) => a.quantity > 0);
      if (!wanted.length) { say("Choose how many standing places you want.", "warn"); return; }
      hold({ areas: wanted });
    });
    void currency;
  }

  function countdown() {
    const root = $("#hold");
    if (!root) return;
    const holdId = root.dataset.hold;
    const showId = root.dataset.show;
    const expired = () => {
      const form = $("#pay-form");
      if (form) form.hidden = true;
      const release = $("#release");
      if (release) release.hidden = true;
      const clock = $(".countdown");
      if (clock) clock.hidden = true;
      $("#expired").hidden = false;
      say("Your hold has ended and the seats were released.", "warn");
    };
    if (root.dataset.live === "yes") {
      // The deadline from the server's clock, counted on this one's monotonic timer.
      const deadline = performance.now() + Number(root.dataset.remainingMs);
      const tick = () => {
        const left = Math.max(0, deadline - performance.now());
        const seconds = Math.ceil(left / 1000);
        $("#countdown").textContent = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
        if (left <= 0) { expired(); return; }
        setTimeout(tick, Math.min(1000, left));
      };
      tick();
    }
    const form = $("#pay-form");
    if (form) form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = $("#pay");
      button.disabled = true;
      const card = form.elements.card_number.value.replace(/\D/g, "");
      const result = await api("POST", "/api/v1/bookings", { hold_id: holdId, payment: { method: "card", card_number: card } });
      button.disabled = false;
      if (result.status === 202) { awaitPayment(result.data); return; }
      if (result.ok) { location.href = "/bookings/" + result.data.id; return; }
      if (result.data && result.data.type === "hold_expired") expired();
      fail(result, form);
    });

    // A payment the provider has not decided yet: the customer may have to confirm with their
    // bank first; then it is followed until it succeeds (and the booking is shown) or not.
    async function awaitPayment(payment) {
      const check = $("#three-ds");
      if (payment.state === "requires_action") {
        check.hidden = false;
        $("#confirm-payment").onclick = async () => {
          const confirmed = await api("POST", payment.next_action.confirm_url);
          if (!confirmed.ok) return fail(confirmed);
          check.hidden = true;
          awaitPayment(confirmed.data);
        };
        return;
      }
      say("Your payment is being processed. Your seats stay held meanwhile.", "warn");
      for (;;) {
        await new Promise((done) => setTimeout(done, 700));
        const now = await api("GET", "/api/v1/payments/" + payment.id);
        if (!now.ok) return fail(now);
        const p = now.data;
        if (p.state === "succeeded" && p.booking_id) { location.href = "/bookings/" + p.booking_id; return; }
        if (p.state === "failed") { say("Your payment failed: " + (p.failure_reason || "the bank said no") + ". Your seats are still held: try another card."); return; }
        if (p.state === "refunded") { say("The payment came through after your hold had ended, so it was refunded in full."); return; }
      }
    }
    const release = $("#release");
    if (release) release.addEventListener("click", async () => {
      const result = await api("DELETE", "/api/v1/holds/" + holdId);
      if (!result.ok && result.status !== 404) return fail(result);
      location.href = "/shows/" + showId;
    });
  }

  function waitingRoom() {
    const root = $("#queue");
    if (!root) return;
    const showId = root.dataset.show;
    const words = {
      pre_queue: "You are in the line. The sale has not opened yet; places are drawn at random when it does.",
      waiting: "You are in the line.",
      admitted: "It's your turn! Taking you to the seats…",
      expired: "Your turn has passed. Join again to get back in line.",
      sold_out: "Everything is taken for now. Stay here: if seats come back, the line moves again.",
    };
    let busy = false;
    async function look() {
      if (busy) return;
      busy = true;
      const result = await api("GET", "/api/v1/queues/" + showId + "/position");
      busy = false;
      if (!result.ok) return fail(result);
      const s = result.data;
      $("#queue-state").textContent = words[s.state] || s.state;
      $("#queue-position").textContent = s.position != null ? s.position : "—";
      $("#queue-ahead").textContent = s.ahead != null ? s.ahead : "—";
      $("#queue-wait").textContent = s.estimated_wait_seconds != null
        ? (s.estimated_wait_seconds < 60 ? "under a minute" : "about " + Math.round(s.estimated_wait_seconds / 60) + " min")
        : "—";
      if (s.state === "admitted" && s.admission_token) {
        sessionStorage.setItem("admission:" + showId, s.admission_token);
        location.href = "/shows/" + showId;
      }
    }
    (async () => {
      const joined = await api("POST", "/api/v1/queues/" + showId + "/join");
      if (!joined.ok) return fail(joined);
      await look();
      setInterval(look, 3000);
      follow([showId], (message) => { if (message.type === "queue_position") look(); }, () => {});
    })();
  }

  function dashboard() {
    const rows = new Map($$("[data-show-row]").map((row) => [row.dataset.showRow, row]));
    if (!rows.size) return;
    const show = (id, categories) => {
      const row = rows.get(id);
      if (!row || !categories) return;
      const sum = (key) => categories.reduce((total, c) => total + (c[key] || 0), 0);
      ["sold", "held", "free"].forEach((key) => { $('[data-count="' + key + '"]', row).textContent = sum(key); });
    };
    follow(Array.from(rows.keys()), (message) => {
      if (message.type === "snapshot") show(message.show_id, message.seat_map.availability);
      if (message.type === "availability") show(message.show_id, message.categories);
    }, () => {});
  }

  function organizerForms() {
    const schedule = $("#schedule-form");
    if (schedule) schedule.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = formBody(schedule);
      const eventId = body.event_id;
      delete body.event_id;
      body.times = String(body.times || "").split(",").map((t) => t.trim()).filter(Boolean);
      body.prices = {};
      String(formBody(schedule).prices || "").split(",").forEach((pair) => {
        const [category, amount] = pair.split("=").map((p) => (p || "").trim());
        if (category) body.prices[category] = Number(amount);
      });
      ["hold_minutes", "max_tickets_per_order"].forEach((k) => { if (body[k] !== undefined) body[k] = Number(body[k]); });
      const result = await api("POST", "/api/v1/events/" + eventId + "/schedule", body);
      if (!result.ok) return fail(result, schedule);
      location.href = "/organizer";
    });
    const preview = $("#preview-layout");
    if (preview) preview.addEventListener("click", async () => {
      const form = $("#venue-form");
      let body;
      try { body = formBody(form); } catch (e) { say("The layout is not valid JSON: " + e.message); return; }
      const csrf = cookie("boxoffice_csrf");
      const response = await fetch("/pages/layout-preview", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf || "" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      const text = await response.text();
      if (!response.ok) {
        let data = null;
        try { data = JSON.parse(text); } catch (e) { data = null; }
        return fail({ ok: false, status: response.status, data }, form);
      }
      say("");
      $("#layout-preview").innerHTML = text;
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    renewSignIn();
    wireForms();
    wireAccountButtons();
    shop();
    countdown();
    waitingRoom();
    dashboard();
    organizerForms();
  });
})();
