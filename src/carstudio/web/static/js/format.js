// Numbers, money and durations in the words Car Studio shows people. Durations are in seconds
// everywhere; callers holding milliseconds divide by 1000.

/** "1 row", "3 rows"; `many` for irregular plurals. */
export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

/** US dollars to the cent, as the server writes them: "$0.12", "$1,234.50". */
export function formatUsd(amount) {
  const dollars = Number(amount) || 0;
  return `$${dollars.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** Bytes for people, rounded up so a file just over a limit never looks equal to it. */
export function formatBytes(bytes) {
  const mib = 1024 * 1024;
  if (bytes >= mib) return `${Math.ceil((bytes / mib) * 10) / 10} MB`;
  if (bytes >= 1024) return `${Math.ceil((bytes / 1024) * 10) / 10} KB`;
  return `${bytes} bytes`;
}

/** A measured time, short: "0.05 s", "4.2 s", "17 s", "2 min 5 s". */
export function formatSeconds(seconds) {
  const s = Math.max(0, Number(seconds) || 0);
  if (s < 0.1) return `${s.toFixed(2)} s`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const minutes = Math.floor(s / 60);
  return `${minutes} min ${Math.round(s - minutes * 60)} s`;
}

/** Time left in words: "About 40 seconds", "About 3 minutes". */
export function timeLeftInWords(seconds) {
  if (seconds == null || !Number.isFinite(Number(seconds))) return "Estimating…";
  const s = Math.max(0, Number(seconds));
  if (s <= 5) return "A few seconds";
  if (s < 55) return `About ${Math.ceil(s / 5) * 5} seconds`;
  if (s < 90) return "About a minute";
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `About ${minutes} minutes`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes - hours * 60;
  return `About ${plural(hours, "hour")}${rest ? ` ${plural(rest, "minute")}` : ""}`;
}

/** A whole duration in words: "12 seconds", "3 min 5 s". */
export function durationInWords(seconds) {
  const exact = Math.max(0, Number(seconds) || 0);
  if (exact < 1) return "Under a second";
  const s = Math.round(exact);
  if (s < 60) return plural(s, "second");
  const minutes = Math.floor(s / 60);
  const rest = s - minutes * 60;
  return rest ? `${minutes} min ${rest} s` : plural(minutes, "minute");
}

/**
 * A moment (seconds since 1970) in the person's own time zone: "14:05" today, "3 Mar, 14:05"
 * earlier this year, "3 Mar 2024, 14:05" before that.
 */
export function localTime(epochSeconds, now = new Date()) {
  const when = new Date(Number(epochSeconds) * 1000);
  const clock = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (when.toDateString() === now.toDateString()) return clock;
  const year = when.getFullYear() === now.getFullYear() ? undefined : "numeric";
  const day = when.toLocaleDateString([], { day: "numeric", month: "short", year });
  return `${day}, ${clock}`;
}
