// Keyboard shortcuts of the alert page: f = label fraud, l = label legit, n = write a note.
// Keys typed into a field are left alone (Escape leaves the field).
"use strict";
document.addEventListener("keydown", function (event) {
  var target = event.target;
  var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
                          target.tagName === "SELECT" || target.isContentEditable);
  if (typing) {
    if (event.key === "Escape") { target.blur(); }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) { return; }
  var form = document.getElementById("label-form");
  if (!form) { return; }
  if (event.key === "f" || event.key === "l") {
    var button = document.getElementById(event.key === "f" ? "label-fraud" : "label-legit");
    event.preventDefault();
    button.click();
  } else if (event.key === "n") {
    event.preventDefault();
    document.getElementById("note").focus();
  }
});
