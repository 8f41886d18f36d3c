// The podcast page's browser half: a click on a transcript line or a chapter seeks the player there and plays, and
// the line being heard is highlighted as the audio plays (from the audio element's own time: no round trip to the
// server). Loaded inline once per page; everything hangs off window.agentPodcast.
(() => {
  if (window.agentPodcast) return;
  const PLAYING = "podcast-line--playing";
  const INTERACTIVE = "button, a, input, textarea, select, .podcast-edit, .podcast-cite";

  const playerOf = (element) => {
    const view = element.closest(".podcast-view");
    return view ? view.querySelector("audio") : null;
  };

  const shown = new WeakMap(); // each podcast view's line highlighted last

  function inView(element) {
    const box = element.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight;
  }

  // The line heard at `time`: the last one that has started (a pause after a line still belongs to it).
  function mark(audio) {
    const view = audio.closest(".podcast-view");
    if (!view) return;
    const time = audio.currentTime;
    let current = null;
    if (!audio.ended) {
      view.querySelectorAll(".podcast-line[data-start]").forEach((line) => {
        if (Number(line.dataset.start) <= time + 0.05) current = line;
      });
    }
    view.querySelectorAll("." + PLAYING).forEach((line) => {
      if (line !== current) {
        line.classList.remove(PLAYING);
        line.removeAttribute("aria-current");
      }
    });
    if (!current || current.classList.contains(PLAYING)) return;
    // Follow the audio down the transcript while the reader follows it (the line before was in view).
    const previous = shown.get(view);
    const following = previous && previous !== current && previous.isConnected && inView(previous);
    if (!audio.paused && following && !inView(current)) {
      current.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
    current.classList.add(PLAYING);
    current.setAttribute("aria-current", "true");
    shown.set(view, current);
  }

  function seek(audio, seconds) {
    audio.currentTime = seconds;
    mark(audio);
    const played = audio.play();
    if (played && played.catch) played.catch(() => {}); // the browser may refuse to play without a gesture
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const explicit = target.closest("[data-seek]");
    const line = target.closest(".podcast-line[data-start]");
    let seconds = null;
    if (explicit && explicit.closest(".podcast-view")) seconds = Number(explicit.dataset.seek);
    else if (line && !target.closest(INTERACTIVE)) seconds = Number(line.dataset.start);
    if (seconds === null || Number.isNaN(seconds)) return;
    const audio = playerOf(explicit || line);
    if (audio) seek(audio, seconds);
  });

  // Media events do not bubble: listen while they go down (capture), for every player on the page, now or later.
  for (const name of ["timeupdate", "seeked", "play", "ended", "emptied"]) {
    document.addEventListener(
      name,
      (event) => {
        if (event.target instanceof HTMLMediaElement) mark(event.target);
      },
      true,
    );
  }

  window.agentPodcast = {
    // After a new version of the audio is set: once it has loaded, stand at `seconds` (where the edited line is).
    seekWhenLoaded(viewId, seconds) {
      const view = getHtmlElement(viewId);
      const audio = view ? view.querySelector("audio") : null;
      if (!audio) return;
      audio.addEventListener(
        "loadedmetadata",
        () => {
          audio.currentTime = seconds;
          mark(audio);
        },
        { once: true },
      );
    },
  };
})();
