// The copy button of the extension page's install command. Without this
// script the button stays hidden and the command is plain, selectable
// text. The clipboard API exists only in a secure context (https, or
// localhost): elsewhere, and when the browser refuses, the command is
// selected instead and the status line says to copy it by hand.
(function () {
  "use strict";
  var button = document.getElementById("copy-install");
  var command = document.getElementById("install");
  var status = document.getElementById("copy-status");
  if (!button || !command || !status) {
    return;
  }
  function selectCommand(why) {
    var range = document.createRange();
    range.selectNodeContents(command);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    status.textContent = why + " The command is selected: press Ctrl+C (⌘C on a Mac) to copy it.";
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var text = command.textContent;
    if (!navigator.clipboard || !window.isSecureContext) {
      selectCommand("The clipboard is not available on a plain-HTTP page.");
      return;
    }
    navigator.clipboard.writeText(text).then(function () {
      status.textContent = "Copied the install command.";
    }, function () {
      selectCommand("The browser refused access to the clipboard.");
    });
  });
})();
