/* formloom kanban board: drag a card to another column to change its value.
 *
 * A drop only fills in the card's own "move to" form and submits it, so a drag,
 * the keyboard (the form's list and button) and a browser without JavaScript
 * take the same path: htmx posts the form and swaps in the board the server sends
 * back, re-read after the save. A refused move (validation rule, permission,
 * approval lock, stale version) comes back as the board with the card where it
 * was and the reason above it, with a 4xx status that htmx is told to swap in.
 * No build step, no dependencies besides the htmx the page already loads.
 */
(function () {
  "use strict";

  var dragged = null;
  var movedId = null;
  var byDrag = false;

  function columnOf(node) {
    return node && node.closest ? node.closest(".board-column") : null;
  }

  function clearTargets() {
    document.querySelectorAll(".board-column.is-over").forEach(function (column) {
      column.classList.remove("is-over");
    });
  }

  function dropTarget(event) {
    var column = columnOf(event.target);
    if (!dragged || !column || column === columnOf(dragged)) {
      return null;
    }
    return column;
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest ? event.target.closest(".board-card[draggable='true']") : null;
    if (!card) {
      return;
    }
    dragged = card;
    card.classList.add("is-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-id"));
  });

  document.addEventListener("dragend", function () {
    if (dragged) {
      dragged.classList.remove("is-dragging");
    }
    dragged = null;
    clearTargets();
  });

  document.addEventListener("dragover", function (event) {
    var column = dropTarget(event);
    if (!column) {
      return;
    }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    if (!column.classList.contains("is-over")) {
      clearTargets();
      column.classList.add("is-over");
    }
  });

  document.addEventListener("drop", function (event) {
    var column = dropTarget(event);
    if (!column) {
      return;
    }
    event.preventDefault();
    var card = dragged;
    clearTargets();
    moveCard(card, column);
  });

  /* Show the card in its new column at once, then save through its form. */
  function moveCard(card, column) {
    var form = card.querySelector("form.board-move");
    if (!form) {
      return;
    }
    form.querySelector("select[name='to']").value = column.getAttribute("data-value");
    var list = column.querySelector(".board-cards");
    var empty = list.querySelector(".board-empty");
    if (empty) {
      empty.remove();
    }
    list.insertBefore(card, list.firstChild);
    card.classList.add("is-saving");
    card.setAttribute("aria-busy", "true");
    var board = document.getElementById("board");
    notify(board ? board.getAttribute("data-saving") : "", "");
    byDrag = true;
    if (form.requestSubmit) {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  function notify(text, kind) {
    var notice = document.getElementById("board-notice");
    if (!notice) {
      return;
    }
    notice.className = "board-notice" + (kind ? " " + kind : "");
    notice.textContent = text;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.matches && form.matches("form.board-move")) {
      movedId = byDrag ? null : form.querySelector("input[name='record_id']").value;
      byDrag = false;
    }
  });

  /* A refused move answers 4xx with the board: swap it in. Any other error page (an
     expired form, a lost session) gives its message; the board is read again. */
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (!detail.target || detail.target.id !== "board" || detail.xhr.status < 400) {
      return;
    }
    if (detail.xhr.responseText.indexOf('id="board"') !== -1) {
      detail.shouldSwap = true;
      detail.isError = false;
      return;
    }
    detail.shouldSwap = false;
    var page = new DOMParser().parseFromString(detail.xhr.responseText, "text/html");
    var alert = page.querySelector(".alert");
    var message = alert ? alert.textContent : String(detail.xhr.status);
    reloadBoard(message);
  });

  function reloadBoard(message) {
    if (!window.htmx) {
      window.location.reload();
      return;
    }
    window.htmx
      .ajax("GET", window.location.href, { target: "#board", select: "#board", swap: "outerHTML" })
      .then(function () {
        notify(message, "error");
      });
  }

  /* After a keyboard move, keep the focus on the moved card's list. */
  document.addEventListener("htmx:afterSwap", function () {
    if (movedId === null) {
      return;
    }
    var select = document.getElementById("board-move-" + movedId);
    movedId = null;
    if (select && document.activeElement === document.body) {
      select.focus();
    }
  });
})();
