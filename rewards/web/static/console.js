// The console's keyboard shortcuts, photo viewer and filter auto-submit. Progressive: without this script every
// button, link and form still works. V valid · D duplicate (the nearest earlier suspect, or what the field says)
// · X invalid · J/K next/previous case · F photo large · R reason · Esc close or leave a field.
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll(".case-card[data-case-id]"));
  var box = document.getElementById("lightbox");
  var current = 0;

  function select(index, scroll) {
    if (!cards.length) return;
    current = Math.max(0, Math.min(cards.length - 1, index));
    cards.forEach(function (card, i) { card.classList.toggle("current", i === current); });
    if (scroll) cards[current].scrollIntoView({ block: "start" });
  }

  function openPhoto(url) {
    if (!box) return;
    box.querySelector("img").src = url;
    if (!box.open) box.showModal();
  }

  function closePhoto() {
    if (box && box.open) box.close();
  }

  function verdict(value) {
    var card = cards[current];
    var form = card && card.querySelector("form.verdict-form");
    if (!form) return;
    var field = form.querySelector("input[name=duplicate_of]");
    if (value === "duplicate" && field && !field.value.trim()) {
      closePhoto();
      field.focus();
      field.placeholder = "请填写首报案件号，再按 Esc、D";
      return;
    }
    closePhoto();
    form.requestSubmit(form.querySelector('button[name=verdict][value="' + value + '"]'));
  }

  function firstPhoto() {
    var link = cards[current] && cards[current].querySelector("a.photo");
    if (link) openPhoto(link.href);
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.photo");
    if (link && box) {
      event.preventDefault();
      var card = link.closest(".case-card");
      if (card && cards.indexOf(card) >= 0) select(cards.indexOf(card), false);
      openPhoto(link.href);
    }
  });
  if (box) box.addEventListener("click", closePhoto);
  cards.forEach(function (card, i) {
    card.addEventListener("focusin", function () { select(i, false); });
    card.addEventListener("mousedown", function () { select(i, false); });
  });
  // Enter in a verdict form's field must not file the case with the first button: the verdict is always chosen
  Array.prototype.forEach.call(document.querySelectorAll("form.verdict-form input"), function (input) {
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault();
    });
  });
  var filters = document.getElementById("filters");
  if (filters) {
    Array.prototype.forEach.call(filters.querySelectorAll("select"), function (select) {
      select.addEventListener("change", function () { filters.submit(); });
    });
  }

  var keys = {
    v: function () { verdict("valid"); },
    d: function () { verdict("duplicate"); },
    x: function () { verdict("invalid"); },
    j: function () { closePhoto(); select(current + 1, true); },
    k: function () { closePhoto(); select(current - 1, true); },
    f: function () { if (box && box.open) closePhoto(); else firstPhoto(); },
    r: function () {
      var field = cards[current] && cards[current].querySelector("input[name=reason]");
      if (field) { closePhoto(); field.focus(); }
    }
  };
  keys.n = keys.j;
  keys.p = keys.k;

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var target = event.target;
    var typing = target && target.matches && target.matches("input, textarea, select");
    if (event.key === "Escape") {
      if (typing) target.blur();
      return;  // an open photo closes by itself (dialog)
    }
    if (typing || !cards.length) return;
    var action = keys[event.key.toLowerCase()];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  select(0, false);
})();
