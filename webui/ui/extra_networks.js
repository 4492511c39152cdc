// The extra-networks browser in the page (webui/ui/components/extra_networks.py builds its HTML).
// Card clicks, search and sort run here, over the data-* attributes of the cards, so typing in the search box
// never waits for the server and hundreds of cards are not rebuilt per keystroke. Clicks are handled by
// delegation on the document: the cards carry no inline handlers, and a grid replaced by Refresh needs none.
(() => {
  if (window.extraNetworksToggle) return;
  const byId = (id) => document.getElementById(id);

  // Show/hide the panel of one tab: a data attribute the CSS reads (Gradio owns the class attribute).
  window.extraNetworksToggle = (tab) => {
    const panel = byId(tab + "_extra_tabs");
    if (!panel) return;
    if (panel.dataset.open === "true") {
      delete panel.dataset.open;
      return;
    }
    panel.dataset.open = "true";
    // The first opening fills the grids (extra_networks.py builds none at page load).
    if (!panel.dataset.loaded) {
      panel.dataset.loaded = "true";
      byId(tab + "_extra_networks_load")?.click();
    }
  };

  // ---- search and sort -------------------------------------------------------------------------
  const state = {};  // "<tab>_<page>" -> {query, key, descending}
  const stateOf = (prefix) => (state[prefix] ||= {query: "", key: "name", descending: false});

  const apply = (prefix) => {
    const grid = byId(prefix + "_cards");
    if (!grid) return;
    const {query, key, descending} = stateOf(prefix);
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    const cards = [...grid.querySelectorAll(":scope > .card")];
    for (const card of cards) {
      const text = card.dataset.search || "";
      card.style.display = words.every((w) => text.includes(w)) ? "" : "none";
    }
    const value = (card) => card.getAttribute("data-sort-" + key) || "";
    const numeric = key.startsWith("date");
    const sorted = [...cards].sort((a, b) => {
      const [x, y] = [value(a), value(b)];
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, {numeric: true});
      return descending ? -order : order;
    });
    if (sorted.some((card, i) => card !== cards[i])) grid.append(...sorted);
  };

  window.extraNetworksSearch = (prefix, query) => { stateOf(prefix).query = query || ""; apply(prefix); };
  window.extraNetworksSort = (prefix, key) => { stateOf(prefix).key = key || "name"; apply(prefix); };
  window.extraNetworksReverse = (prefix) => { const s = stateOf(prefix); s.descending = !s.descending; apply(prefix); };

  // The controls (extra_networks_html.controls_html) are plain HTML: no Gradio round trip per keystroke.
  const controlsOf = (el) => el.closest?.(".extra-network-controls");
  document.addEventListener("input", (event) => {
    const controls = controlsOf(event.target);
    if (controls && event.target.matches(".extra-network-search")) {
      window.extraNetworksSearch(controls.dataset.prefix, event.target.value);
    }
  });
  document.addEventListener("change", (event) => {
    const controls = controlsOf(event.target);
    if (controls && event.target.matches(".extra-network-sort")) {
      window.extraNetworksSort(controls.dataset.prefix, event.target.value);
    }
  });

  // A grid replaced by Refresh or Save comes back in the page's current search and order.
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1) continue;
        const grids = node.matches(".extra-network-cards") ? [node] : node.querySelectorAll(".extra-network-cards");
        for (const grid of grids) apply(grid.id.replace(/_cards$/, ""));
      }
    }
  }).observe(document.documentElement, {childList: true, subtree: true});

  // ---- prompt editing -------------------------------------------------------------------------
  const escapeRegex = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

  // `text` removed from `value` (with the separator that joined it), or null when it is not there. A tag
  // such as <lora:name:0.7> also matches with another weight, as a user may have edited it.
  const removeText = (value, text) => {
    let start = value.indexOf(text);
    let length = text.length;
    if (start < 0) {
      const tag = text.match(/^<([^:<>]+):([^:<>]+)(?::[^<>]*)?>/);
      if (!tag) return null;
      const found = new RegExp("<" + escapeRegex(tag[1]) + ":" + escapeRegex(tag[2]) + "(?::[^<>]*)?>").exec(value);
      if (!found) return null;
      start = found.index;
      length = found[0].length;
      const rest = text.slice(tag[0].length);
      if (rest && value.startsWith(rest, start + length)) length += rest.length;
    }
    let before = value.slice(0, start);
    let after = value.slice(start + length);
    if (before.trim()) before = before.replace(/[\s,]*$/, "");
    else after = after.replace(/^[\s,]*/, "");
    return before + after;
  };

  const toggleText = (elemId, text) => {
    const box = document.querySelector("#" + elemId + " textarea");
    if (!box || !text) return;
    const removed = removeText(box.value, text);
    box.value = removed !== null ? removed
      : (box.value.trim() ? box.value.replace(/[\s,]*$/, "") + ", " + text : text);
    // Gradio reads the box on its input event: the value reaches the server and the token counter.
    box.dispatchEvent(new Event("input", {bubbles: true}));
  };

  // A1111's name: extensions call it to switch the model the way a checkpoint card does.
  window.selectCheckpoint = (name) => {
    window.desiredCheckpointName = name;
    byId("change_checkpoint")?.click();
  };

  // What the hidden Gradio buttons hand to the server: a card to open, a page to refresh (per tab).
  const pendingEdits = {};
  const pendingRefresh = {};
  window.extraNetworksPendingEdit = (tab) => pendingEdits[tab] || "";
  window.extraNetworksPendingRefresh = (tab) => pendingRefresh[tab] || "";

  document.addEventListener("click", (event) => {
    const controls = controlsOf(event.target);
    if (controls) {
      const prefix = controls.dataset.prefix;
      const tab = controls.dataset.tab;
      if (event.target.closest(".extra-network-sort-dir")) window.extraNetworksReverse(prefix);
      const refresh = event.target.closest(".extra-network-refresh");
      if (refresh) {
        pendingRefresh[tab] = refresh.dataset.page;
        byId(tab + "_extra_networks_refresh")?.click();
      }
      return;
    }
    const card = event.target.closest?.(".extra-network-cards .card");
    if (!card) return;
    const grid = card.closest(".extra-network-cards");
    const tab = grid.dataset.tab;
    if (event.target.closest(".metadata-button")) {
      pendingEdits[tab] = card.dataset.page + "/" + card.dataset.name;
      byId(tab + "_extra_networks_meta_open")?.click();
      return;
    }
    if (card.dataset.checkpoint) {
      window.selectCheckpoint(card.dataset.checkpoint);
      return;
    }
    toggleText(tab + "_prompt", card.dataset.prompt);
    toggleText(tab + "_neg_prompt", card.dataset.negative);
  });
})();
