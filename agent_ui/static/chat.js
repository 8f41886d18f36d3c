// The chat page's browser half: follows the thread while an answer streams, decorates code blocks (language,
// copy), copies text with a toast and shows a cited passage. Loaded inline once per page; everything hangs off
// window.agentChat.
(() => {
  if (window.agentChat) return;
  const NEAR_BOTTOM_PX = 48;

  function notify(message, type) {
    if (window.Quasar && Quasar.Notify) {
      Quasar.Notify.create({ message, type: type || "positive", position: "bottom", timeout: 1500 });
    }
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      notify("Copied");
    } catch (error) {
      notify("The browser did not allow copying", "warning");
    }
  }

  // A fenced block (<pre>, labelled by the server with data-lang) gets a header: its language and a copy button.
  function decorate(root) {
    root.querySelectorAll(".chat-md pre:not([data-chat-code])").forEach((pre) => {
      pre.dataset.chatCode = "1";
      const host = pre.parentElement && pre.parentElement.classList.contains("codehilite") ? pre.parentElement : pre;
      const box = document.createElement("div");
      box.className = "chat-code";
      const head = document.createElement("div");
      head.className = "chat-code-head";
      const label = document.createElement("span");
      label.className = "chat-code-lang";
      label.textContent = pre.dataset.lang || "code";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "chat-code-copy";
      button.setAttribute("aria-label", "Copy code");
      button.innerHTML = '<i class="material-icons" aria-hidden="true">content_copy</i><span>Copy</span>';
      button.addEventListener("click", () => {
        const code = pre.querySelector("code");
        copy((code || pre).innerText.replace(/\n$/, ""));
      });
      head.append(label, button);
      host.parentNode.insertBefore(box, host);
      box.append(head, host);
    });
  }

  // The thread sticks to its end while new text arrives, unless the reader scrolled up; then a button brings it back.
  function attach(scroller) {
    scroller.dataset.chatFollow = "1";
    let stick = true;
    let lastTop = scroller.scrollTop;
    let lastHeight = scroller.scrollHeight;
    const root = scroller.closest(".chat-root") || document;
    const distance = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
    const showJump = () => {
      const jump = root.querySelector(".chat-jump");
      if (jump) jump.classList.toggle("chat-jump--shown", distance() > NEAR_BOTTOM_PX);
    };
    const toBottom = (smooth) => {
      stick = true;
      scroller.scrollTo({ top: scroller.scrollHeight, behavior: smooth ? "smooth" : "auto" });
    };
    scroller.addEventListener(
      "scroll",
      () => {
        if (distance() <= NEAR_BOTTOM_PX) stick = true;
        // Up while the content did not shrink: the reader's doing (a re-render clamping the position is not).
        else if (scroller.scrollTop < lastTop && scroller.scrollHeight >= lastHeight) stick = false;
        lastTop = scroller.scrollTop;
        lastHeight = scroller.scrollHeight;
        showJump();
      },
      { passive: true },
    );
    const changed = () => {
      decorate(scroller);
      if (stick) toBottom(false);
      lastHeight = scroller.scrollHeight;
      showJump();
    };
    new MutationObserver(changed).observe(scroller, { childList: true, subtree: true, characterData: true });
    new ResizeObserver(changed).observe(scroller);
    scroller.chatToBottom = toBottom;
    changed();
  }

  function scan() {
    document.querySelectorAll(".chat-scroll:not([data-chat-follow])").forEach(attach);
  }

  // The source panel: once its passage is on the page, the cited span is scrolled into view and focus moves into the
  // panel; closing it gives focus back to the citation that opened it.
  let sourceOpener = null;
  // Remembered at the click: a Quasar button gives its focus up once clicked with a mouse.
  document.addEventListener(
    "click",
    (event) => {
      const opener = event.target.closest && event.target.closest("[data-cite], .chat-source-chip");
      if (opener) sourceOpener = opener;
    },
    true,
  );
  function showSource(id, chunk) {
    const wrap = window.getHtmlElement ? getHtmlElement(id) : document.getElementById("c" + id);
    if (!wrap) return;
    const active = document.activeElement;
    if (active && active !== document.body && !wrap.contains(active)) sourceOpener = active;
    let tries = 0;
    const step = () => {
      const panel = wrap.querySelector(".chat-source");
      const shown = panel && getComputedStyle(wrap).display !== "none";
      const holder = chunk ? [...wrap.querySelectorAll("[data-chunk]")].find((el) => el.dataset.chunk === chunk) : null;
      const mark = holder && holder.querySelector("mark");
      if (!shown || (chunk && !mark)) {
        if (tries++ < 120) requestAnimationFrame(step);
        return;
      }
      const body = panel.querySelector(".chat-source-body");
      if (body && mark) {
        const top = mark.getBoundingClientRect().top - body.getBoundingClientRect().top + body.scrollTop;
        body.scrollTo({ top: Math.max(0, top - body.clientHeight / 4) });
      }
      panel.focus({ preventScroll: true });
    };
    step();
  }

  function sourceClosed() {
    if (sourceOpener && sourceOpener.isConnected) sourceOpener.focus({ preventScroll: true });
    sourceOpener = null;
  }

  window.agentChat = {
    copy,
    notify,
    showSource,
    sourceClosed,
    toBottom() {
      const scroller = document.querySelector(".chat-scroll");
      if (scroller && scroller.chatToBottom) scroller.chatToBottom(true);
    },
  };
  const start = () => {
    scan();
    new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
  };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
