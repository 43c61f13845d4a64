// Chairfill's reference booking widget: plain JS, no build step. It calls the public
// booking API with a publishable key: appointment types, slots, a hold, the confirmation.
// Every date and time is shown in the location's time zone (the API's `time_zone`).
(function () {
  "use strict";

  var DAYS_SHOWN = 7;
  var root = document.querySelector("[data-chairfill-widget]");
  if (!root) return;
  var params = new URLSearchParams(window.location.search);
  var config = {
    locationId:
      root.dataset.locationId ||
      decodeURIComponent(window.location.pathname.replace(/\/+$/, "").split("/").pop() || ""),
    key: root.dataset.publishableKey || params.get("publishable_key") || "",
    apiBase: (root.dataset.apiBase || window.location.origin).replace(/\/+$/, ""),
    // A one-tap booking link from a practice message (`/b/{code}` lands here with it).
    invite: params.get("invite") || "",
  };
  var state = { timeZone: null, type: null, firstDay: null, slotsByDay: {}, day: null, hold: null, confirmKey: null, confirmBody: null };

  function $(id) { return document.getElementById(id); }

  function show(id, visible) { $(id).hidden = !visible; }

  function say(text) { $("cf-status").textContent = text; }

  function fail(text) {
    var box = $("cf-error");
    box.textContent = text;
    box.hidden = !text;
  }

  // A random Idempotency-Key; crypto.randomUUID needs a secure context, this does not.
  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function api(method, path, body, idempotencyKey) {
    var headers = { Authorization: "Bearer " + config.key, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    return fetch(config.apiBase + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.detail || data.title || "The request failed (" + response.status + ").");
          error.status = response.status;
          error.problem = data;
          throw error;
        }
        return { status: response.status, data: data };
      });
    }, function () {
      throw new Error("The booking service cannot be reached. Check your connection and try again.");
    });
  }

  // --- dates in the location's time zone -----------------------------------------------

  function todayThere() {
    // en-CA formats as YYYY-MM-DD.
    return new Intl.DateTimeFormat("en-CA", { timeZone: state.timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
  }

  function addDays(day, count) {
    var parts = day.split("-").map(Number);
    return new Date(Date.UTC(parts[0], parts[1] - 1, parts[2] + count)).toISOString().slice(0, 10);
  }

  function dayLabel(day) {
    // A calendar date, not an instant: formatted at noon UTC so no zone can shift it.
    return new Intl.DateTimeFormat(undefined, { timeZone: "UTC", weekday: "short", month: "short", day: "numeric" }).format(new Date(day + "T12:00:00Z"));
  }

  function timeLabel(instant) {
    return new Intl.DateTimeFormat(undefined, { timeZone: state.timeZone, hour: "numeric", minute: "2-digit" }).format(new Date(instant));
  }

  function whenLabel(instant) {
    return new Intl.DateTimeFormat(undefined, { timeZone: state.timeZone, weekday: "long", month: "long", day: "numeric", hour: "numeric", minute: "2-digit", timeZoneName: "short" }).format(new Date(instant));
  }

  // --- step 1: appointment types ---------------------------------------------------------

  // --- a one-tap link: the patient's name filled in, the suggested type chosen -----------

  function openInvite() {
    say("Opening your booking link…");
    return api("GET", "/v1/booking-invites/" + encodeURIComponent(config.invite)).then(function (answer) {
      var invite = answer.data;
      if (!config.key && invite.publishable_key) config.key = invite.publishable_key;
      state.inviteType = invite.appointment_type_id;
      $("cf-first-name").value = invite.first_name;
      $("cf-last-name").value = invite.last_name;
      $("cf-contact-hint").textContent = "Booking for " + invite.first_name + ": confirm with your date of birth. We have your contact details.";
      say("");
    }, function () {
      // An expired link still lets the patient book the ordinary way.
      config.invite = "";
      say("");
    });
  }

  function loadTypes() {
    if (!config.key || !config.locationId) {
      fail("This booking page is missing its location or publishable key.");
      return;
    }
    say("Loading appointment types…");
    api("GET", "/v1/locations/" + encodeURIComponent(config.locationId) + "/appointment-types").then(function (answer) {
      state.timeZone = answer.data.time_zone;
      var select = $("cf-type");
      select.innerHTML = "";
      var placeholder = new Option(answer.data.data.length ? "Choose…" : "Nothing can be booked online here", "");
      select.add(placeholder);
      answer.data.data.forEach(function (type) {
        var option = new Option(type.name + " (" + type.duration_minutes + " min)", type.id);
        select.add(option);
      });
      select.disabled = answer.data.data.length === 0;
      $("cf-zone").textContent = "Times are shown in the office's time zone (" + state.timeZone + ").";
      say("");
      var suggested = state.inviteType && answer.data.data.some(function (t) { return t.id === state.inviteType; });
      if (suggested) {
        select.value = state.inviteType;
        select.dispatchEvent(new Event("change"));
      }
    }, function (error) { say(""); fail(error.message); });
  }

  $("cf-type").addEventListener("change", function (event) {
    fail("");
    state.type = event.target.value || null;
    state.hold = null;
    show("cf-step-patient", false);
    show("cf-step-done", false);
    if (!state.type) { show("cf-step-slot", false); return; }
    state.firstDay = todayThere();
    loadSlots();
  });

  // --- step 2: slots by day --------------------------------------------------------------

  function loadSlots() {
    var first = state.firstDay;
    var last = addDays(first, DAYS_SHOWN - 1);
    var query = new URLSearchParams({ appointment_type: state.type, start: first, end: last });
    show("cf-step-slot", true);
    $("cf-range").textContent = dayLabel(first) + " – " + dayLabel(last);
    $("cf-prev").disabled = first <= todayThere();
    say("Looking for free times…");
    api("GET", "/v1/locations/" + encodeURIComponent(config.locationId) + "/slots?" + query.toString()).then(function (answer) {
      state.timeZone = answer.data.time_zone;
      var byDay = {};
      answer.data.data.forEach(function (slot) {
        // A slot's start carries the location's offset: its first 10 characters are its local date.
        var day = slot.start.slice(0, 10);
        (byDay[day] = byDay[day] || []).push(slot);
      });
      state.slotsByDay = byDay;
      renderDays(first);
      var firstWithSlots = null;
      for (var i = 0; i < DAYS_SHOWN; i++) {
        var day = addDays(first, i);
        if (byDay[day]) { firstWithSlots = day; break; }
      }
      selectDay(firstWithSlots || first);
      say(answer.data.data.length ? "" : "No free times these days; try later days.");
    }, function (error) { say(""); fail(error.message); });
  }

  function renderDays(first) {
    var days = $("cf-days");
    days.innerHTML = "";
    for (var i = 0; i < DAYS_SHOWN; i++) {
      var day = addDays(first, i);
      var count = (state.slotsByDay[day] || []).length;
      var button = document.createElement("button");
      button.type = "button";
      button.dataset.day = day;
      button.textContent = dayLabel(day) + " (" + count + ")";
      button.setAttribute("aria-label", dayLabel(day) + ": " + (count ? count + " free times" : "no free times"));
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", function (event) { selectDay(event.currentTarget.dataset.day); });
      days.appendChild(button);
    }
  }

  function selectDay(day) {
    state.day = day;
    Array.prototype.forEach.call($("cf-days").children, function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.day === day));
    });
    var slots = state.slotsByDay[day] || [];
    $("cf-day-label").textContent = dayLabel(day) + (slots.length ? "" : ": no free times");
    var list = $("cf-slot-list");
    list.innerHTML = "";
    slots.forEach(function (slot) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "cf-slot";
      button.dataset.start = slot.start;
      button.textContent = timeLabel(slot.start);
      button.setAttribute("aria-label", "Book " + whenLabel(slot.start));
      button.addEventListener("click", function () { holdSlot(slot, button); });
      item.appendChild(button);
      list.appendChild(item);
    });
  }

  $("cf-prev").addEventListener("click", function () {
    var earlier = addDays(state.firstDay, -DAYS_SHOWN);
    var today = todayThere();
    state.firstDay = earlier < today ? today : earlier;
    loadSlots();
  });
  $("cf-next").addEventListener("click", function () {
    state.firstDay = addDays(state.firstDay, DAYS_SHOWN);
    loadSlots();
  });

  // --- hold, then the patient's details --------------------------------------------------

  function holdSlot(slot, button) {
    fail("");
    button.disabled = true;
    say("Holding " + whenLabel(slot.start) + "…");
    var body = { location_id: config.locationId, appointment_type_id: state.type, start: slot.start };
    api("POST", "/v1/holds", body, newKey()).then(function (answer) {
      state.hold = answer.data;
      state.confirmKey = null;
      say("");
      $("cf-held").textContent = "We are holding " + whenLabel(state.hold.start) + " for you until " + timeLabel(state.hold.hold_expires_at) + ".";
      show("cf-step-slot", false);
      show("cf-step-patient", true);
      $("cf-first-name").focus();
    }, function (error) {
      button.disabled = false;
      say("");
      fail(error.status === 409 ? "That time was just taken. Please pick another." : error.message);
      if (error.status === 409) loadSlots();
    });
  }

  $("cf-back").addEventListener("click", function () {
    state.hold = null;
    show("cf-step-patient", false);
    loadSlots();
  });

  function patientBody() {
    var value = function (id) { var v = $(id).value.trim(); return v === "" ? null : v; };
    return {
      first_name: value("cf-first-name") || "",
      last_name: value("cf-last-name") || "",
      birthdate: value("cf-birthdate") || "",
      mobile: value("cf-mobile"),
      email: value("cf-email"),
      notes: value("cf-notes"),
      sms_consent: $("cf-sms-consent").checked,
      email_consent: $("cf-email-consent").checked,
      invite: config.invite || null,
    };
  }

  function missingField(body) {
    if (!body.first_name) return ["cf-first-name", "Please enter your first name."];
    if (!body.last_name) return ["cf-last-name", "Please enter your last name."];
    if (!body.birthdate) return ["cf-birthdate", "Please enter your date of birth."];
    if (!body.mobile && !body.email && !body.invite) return ["cf-mobile", "Please enter a mobile number or an email address."];
    return null;
  }

  $("cf-patient-form").addEventListener("submit", function (event) {
    event.preventDefault();
    fail("");
    var body = patientBody();
    var missing = missingField(body);
    if (missing) {
      fail(missing[1]);
      $(missing[0]).setAttribute("aria-invalid", "true");
      $(missing[0]).focus();
      return;
    }
    // A retry of the same details reuses the key, so a lost answer cannot book twice.
    var serialized = JSON.stringify(body);
    if (state.confirmBody !== serialized) { state.confirmKey = newKey(); state.confirmBody = serialized; }
    $("cf-confirm").disabled = true;
    say("Confirming…");
    api("POST", "/v1/holds/" + encodeURIComponent(state.hold.id) + "/confirm", body, state.confirmKey).then(function (answer) {
      say("");
      var done = answer.data;
      var when = whenLabel(done.hold.start);
      $("cf-done-text").textContent = done.status === "confirmed"
        ? "You are booked for " + when + ". A confirmation is on its way."
        : "We received your request for " + when + ". The office will confirm it shortly.";
      $("cf-done-text").dataset.status = done.status;
      show("cf-step-type", false);
      show("cf-step-patient", false);
      show("cf-step-done", true);
      $("cf-step-done").focus();
    }, function (error) {
      $("cf-confirm").disabled = false;
      say("");
      var problem = error.problem || {};
      var field = problem.errors && problem.errors[0] && problem.errors[0].field;
      if (field && $("cf-" + field.replace(/_/g, "-"))) $("cf-" + field.replace(/_/g, "-")).setAttribute("aria-invalid", "true");
      fail(error.status === 409 ? error.message + " Please pick another time." : error.message);
    });
  });

  if (config.invite) openInvite().then(loadTypes); else loadTypes();
})();
