// The slides page's browser half: a slide's card dragged onto another place in the grid moves the slide there.
// The grid is told which slide went where (a "slidemove" event with {from, to}, positions from 0); the server
// reorders the deck and redraws the grid. Loaded inline once per page; everything hangs off window.agentSlides.
(() => {
  if (window.agentSlides) return;
  const CARD = ".slide-card[data-index]";
  const BEFORE = "slide-card--before";
  const AFTER = "slide-card--after";
  let dragged = null; // the card being dragged
  let marked = null; // the card showing where it would land

  const cardOf = (event) => (event.target instanceof Element ? event.target.closest(CARD) : null);

  // In a grid a card's left half drops before it, its right half after it (a single column: top and bottom).
  function side(card, event) {
    const box = card.getBoundingClientRect();
    const grid = card.parentElement;
    const columns = grid ? getComputedStyle(grid).gridTemplateColumns.split(" ").length : 2;
    if (columns <= 1) return event.clientY < box.top + box.height / 2 ? "before" : "after";
    return event.clientX < box.left + box.width / 2 ? "before" : "after";
  }

  function unmark() {
    if (marked) marked.classList.remove(BEFORE, AFTER);
    marked = null;
  }

  function end() {
    unmark();
    if (dragged) dragged.classList.remove("slide-card--dragging");
    dragged = null;
  }

  document.addEventListener("dragstart", (event) => {
    const card = cardOf(event);
    if (!card) return;
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.index);
    card.classList.add("slide-card--dragging");
  });

  document.addEventListener("dragover", (event) => {
    const card = cardOf(event);
    if (!dragged || !card || card.parentElement !== dragged.parentElement) return;
    event.preventDefault(); // this is a place to drop on
    event.dataTransfer.dropEffect = "move";
    if (marked !== card) unmark();
    marked = card;
    const where = card === dragged ? null : side(card, event);
    card.classList.toggle(BEFORE, where === "before");
    card.classList.toggle(AFTER, where === "after");
  });

  document.addEventListener("drop", (event) => {
    const card = cardOf(event);
    if (!dragged || !card || card.parentElement !== dragged.parentElement) return end();
    event.preventDefault();
    const from = Number(dragged.dataset.index);
    let to = Number(card.dataset.index) + (side(card, event) === "after" ? 1 : 0);
    if (to > from) to -= 1; // the slide leaves its place before it lands
    const grid = dragged.parentElement;
    end();
    if (card !== grid.querySelector(`${CARD}[data-index="${from}"]`) && to !== from) {
      grid.dispatchEvent(new CustomEvent("slidemove", { detail: { from, to } }));
    }
  });

  document.addEventListener("dragend", end);

  window.agentSlides = {
    // After a move by keyboard the grid is drawn anew: the moved card's same button keeps the focus.
    focusCard(gridId, index, button) {
      let tries = 0;
      const look = () => {
        const grid = getHtmlElement(gridId);
        const card = grid ? grid.querySelector(`${CARD}[data-index="${index}"]`) : null;
        const moved = card ? card.querySelector(`[data-move="${button}"]:not([disabled])`) : null;
        const target = moved || (card ? card.querySelector(".slide-open") : null);
        if (target && document.activeElement !== target) target.focus({ preventScroll: false });
        else if (!target && tries++ < 20) setTimeout(look, 50);
      };
      setTimeout(look, 0);
    },
  };
})();
