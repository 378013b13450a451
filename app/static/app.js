// Progressive help only: every page works without it.
"use strict";

// A cover is checked before it is sent: too large or not an image, it is not uploaded at all.
function checkCover(input) {
  const max = Number(input.dataset.maxBytes);
  const error = document.getElementById(input.id + "-error");
  const file = input.files && input.files[0];
  let message = "";
  if (file && !["image/jpeg", "image/png", "image/webp"].includes(file.type)) {
    message = "This file is not a JPEG, PNG or WebP image: choose a photo or scan of the cover in one of those formats.";
  } else if (file && max && file.size > max) {
    const size = file.size >= 1048576 ? (file.size / 1048576).toFixed(1) + " MB" : Math.ceil(file.size / 1024) + " KB";
    message = "This image is " + size + ": a cover may be at most " + Math.floor(max / 1024) + " KB. Choose a smaller one.";
  }
  if (message) {
    input.value = "";
    input.setAttribute("aria-invalid", "true");
  } else {
    input.removeAttribute("aria-invalid");
  }
  if (error) {
    error.textContent = message;
    error.hidden = !message;
    if (message) error.setAttribute("role", "alert"); else error.removeAttribute("role");
  }
}

// Times are sent in UTC with how long ago or ahead; the browser knows the visitor's own zone.
function localTimes() {
  for (const t of document.querySelectorAll("time[datetime] .abs")) {
    const when = new Date(t.parentElement.getAttribute("datetime"));
    if (!isNaN(when)) {
      t.textContent = "(" + when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) + ")";
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[type=file][data-max-bytes]")) {
    input.addEventListener("change", () => checkCover(input));
  }
  localTimes();
  const summary = document.getElementById("form-errors");
  if (summary) summary.focus();
});
