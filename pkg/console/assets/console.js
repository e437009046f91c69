// Every time the pages write (a <time datetime> in UTC) shown in the viewer's own zone,
// with how long ago it is, or how soon. Without script the pages read the same in UTC.
"use strict";

const parts = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
  hourCycle: "h23", timeZoneName: "short",
});

function local(at) {
  const p = Object.fromEntries(parts.formatToParts(at).map((part) => [part.type, part.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
}

function span(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

function relative(at) {
  const seconds = Math.round((Date.now() - at.getTime()) / 1000);
  return seconds >= 0 ? `${span(seconds)} ago` : `in ${span(-seconds)}`;
}

for (const element of document.querySelectorAll("time[datetime]")) {
  const at = new Date(element.getAttribute("datetime"));
  if (Number.isNaN(at.getTime())) continue;
  if (element.classList.contains("relative")) {
    element.title = local(at);
  } else {
    element.title = element.textContent;
    element.textContent = `${local(at)} (${relative(at)})`;
  }
}
