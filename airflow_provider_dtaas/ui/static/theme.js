// Follow Airflow's colour mode (next-themes keeps it in localStorage under "theme"; "system" or
// nothing means the browser's preference). Runs before the page paints, and again when it changes.
(function () {
  function apply() {
    var chosen = null;
    try { chosen = window.localStorage.getItem("theme"); } catch (e) { chosen = null; }
    var dark = chosen === "dark" ||
      ((chosen === null || chosen === "system") &&
        window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
    document.documentElement.dataset.theme = dark ? "dark" : "light";
  }
  apply();
  window.addEventListener("storage", apply);
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", apply);
  }
  setInterval(apply, 1000); // the same tab changing Airflow's mode fires no storage event
})();
