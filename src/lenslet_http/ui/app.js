// lenslet's own gallery page: plain ES module, no framework, no build step, nothing fetched
// from elsewhere. Every request is relative to the page, so the page works mounted anywhere.

const $ = (id) => document.getElementById(id);
const BASE = new URL(".", location.href);
const CELL = 176;
const GAP = 8;

const state = {
  folder: "",
  query: "",
  sort: "name",
  items: [], // folder items, by position; undefined until their page is fetched
  pageSize: 0,
  pages: new Map(), // page number -> Promise of its fetch
  selected: null, // logical path
  item: null, // { path, etag, doc } of the inspector
  viewing: -1,
  readonly: false,
  chosen: new Set(), // paths picked with Ctrl/Cmd/Shift-click, tagged together
};

function url(route, params = {}) {
  const target = new URL(route, BASE);
  for (const [key, value] of Object.entries(params)) target.searchParams.set(key, value);
  return target;
}

async function call(route, params, init = {}) {
  // The header a write with the session cookie needs (another site's page cannot send it).
  const headers = { "X-Requested-With": "lenslet", ...(init.headers || {}) };
  const answer = await fetch(url(route, params), { ...init, headers });
  if (answer.status === 401) signIn();
  if (!answer.ok) {
    let message = `${answer.status}`;
    try {
      message = (await answer.json()).error.message;
    } catch {}
    throw new Error(message);
  }
  return answer;
}

const getJSON = async (route, params) => (await call(route, params)).json();
const thumbURL = (path) => url("thumb", { path });

// -- the URL holds the folder and the selection: #/trips/2025?sel=trips/2025/a.jpg ----------

function readLocation() {
  const [where, query] = location.hash.slice(1).split("?");
  const folder = decodeURIComponent(where || "/").replace(/^\/+|\/+$/g, "");
  return { folder, selected: new URLSearchParams(query || "").get("sel") };
}

function writeLocation(replace) {
  const sel = state.selected ? `?sel=${encodeURIComponent(state.selected)}` : "";
  const hash = `#/${state.folder.split("/").map(encodeURIComponent).join("/")}${sel}`;
  if (hash === location.hash) return;
  if (replace) history.replaceState(null, "", hash);
  else history.pushState(null, "", hash);
}

window.addEventListener("popstate", () => {
  const { folder, selected } = readLocation();
  if (folder !== state.folder) openFolder(folder, { remember: false, selected });
  else select(selected, { remember: false });
});

// -- folder tree (lazy) ------------------------------------------------------------------------

function treeEntry(path, name, kind) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = name;
  button.dataset.path = path;
  if (kind === "leaf-pointer") button.classList.add("pointer");
  button.addEventListener("click", () => {
    openFolder(path);
    expand(li, path);
  });
  li.append(button);
  return li;
}

const expanding = new WeakMap(); // tree entry -> the fetch of its sub-folders (once)

function expand(li, path) {
  if (!expanding.has(li)) {
    expanding.set(li, (async () => {
      const page = await getJSON("folders", { path, page: 0 });
      if (!page.dirs.length) return;
      const ul = document.createElement("ul");
      for (const dir of page.dirs) {
        ul.append(treeEntry(path ? `${path}/${dir.name}` : dir.name, dir.name, dir.kind));
      }
      li.append(ul);
    })());
  }
  return expanding.get(li); // every caller waits for the same sub-folders
}

async function buildTree() {
  const root = document.createElement("ul");
  const li = treeEntry("", "All images", "branch");
  root.append(li);
  $("tree").replaceChildren(root);
  await expand(li, "");
}

async function unfold(folder) {
  // Open the tree down to ``folder`` (a shared link, the back button), one level at a time.
  const parts = folder ? folder.split("/") : [];
  for (let depth = 0; depth < parts.length; depth++) {
    const path = parts.slice(0, depth).join("/");
    const button = $("tree").querySelector(`button[data-path="${CSS.escape(path)}"]`);
    if (!button) break;
    await expand(button.parentElement, path);
  }
  markTree();
}

function markTree() {
  for (const button of $("tree").querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.path === state.folder));
  }
}

function crumbs() {
  const nav = $("crumbs");
  nav.replaceChildren();
  const parts = state.folder ? state.folder.split("/") : [];
  const add = (label, path) => {
    const a = document.createElement("a");
    a.href = `#/${path}`;
    a.textContent = label;
    nav.append(a);
  };
  add("/", "");
  parts.forEach((part, i) => {
    nav.append(" / ");
    add(part, parts.slice(0, i + 1).join("/"));
  });
}

// -- the grid: only the visible cells are in the DOM; pages fetched as they come into view -----

// `refreshing`: the same folder read again (it changed on the server); what is selected and
// picked when the answer comes stays so, whatever the user did meanwhile.
async function openFolder(folder, { remember = true, selected = null, refreshing = false } = {}) {
  state.folder = folder;
  state.query = "";
  $("search").value = "";
  if (!refreshing) state.selected = selected;
  crumbs();
  unfold(folder);
  const first = await getJSON("folders", { path: folder, page: 0 });
  if (state.folder !== folder || state.query) return; // another folder was opened meanwhile
  state.items = new Array(first.itemCount);
  state.pageSize = first.items.length;
  state.pages = new Map([[0, Promise.resolve()]]);
  first.items.forEach((item, i) => (state.items[i] = item));
  if (state.sort !== "name" || first.pageCount === 1) await allPages(first.pageCount);
  sortItems();
  if (remember) writeLocation(false);
  layout();
  if (refreshing && state.selected) showSelected();
  else if (!refreshing && selected) select(selected, { remember: false });
  else $("inspector").hidden = true;
}

function fetchPage(number) {
  if (!state.pages.has(number)) {
    const folder = state.folder;
    const fetched = getJSON("folders", { path: folder, page: number }).then((page) => {
      if (state.folder !== folder) return;
      page.items.forEach((item, i) => (state.items[number * state.pageSize + i] = item));
      render();
    });
    state.pages.set(number, fetched);
  }
  return state.pages.get(number);
}

async function allPages(count) {
  const waits = [];
  for (let n = 1; n < count; n++) waits.push(fetchPage(n));
  await Promise.all(waits);
}

const SORTS = {
  name: (a, b) => a.name.localeCompare(b.name),
  added: (a, b) => (b.addedAt || "").localeCompare(a.addedAt || ""),
  taken: (a, b) => (b.createdAt || "").localeCompare(a.createdAt || ""),
  size: (a, b) => b.size - a.size,
};

function sortItems() {
  if (state.sort !== "name" && !state.items.includes(undefined)) state.items.sort(SORTS[state.sort]);
}

function columns() {
  return Math.max(1, Math.floor(($("grid").clientWidth - GAP) / (CELL + GAP)));
}

let frame = 0;

function layout() {
  // The cells are made again: the one that had the keyboard gets it back, so arrow keys
  // keep working when the folder is refreshed under the user.
  const focused = document.activeElement?.closest?.("#sizer .cell")?.dataset.path;
  const rows = Math.ceil(state.items.length / columns());
  $("sizer").style.height = `${rows * (CELL + GAP)}px`;
  $("sizer").replaceChildren();
  cancelAnimationFrame(frame);
  draw();
  const again = focused && $("sizer").querySelector(`[data-path="${CSS.escape(focused)}"]`);
  if (again) again.focus({ preventScroll: true });
}

function render() {
  cancelAnimationFrame(frame);
  frame = requestAnimationFrame(draw);
}

function draw() {
  const grid = $("grid");
  const cols = columns();
  const top = Math.floor(grid.scrollTop / (CELL + GAP));
  const rows = Math.ceil(grid.clientHeight / (CELL + GAP)) + 1;
  const first = top * cols;
  const last = Math.min(state.items.length, (top + rows) * cols);
  const keep = new Set();
  for (let i = first; i < last; i++) {
    keep.add(String(i));
    const item = state.items[i];
    if (item === undefined) {
      fetchPage(Math.floor(i / state.pageSize));
      continue;
    }
    let cell = $("sizer").querySelector(`[data-index="${i}"]`);
    if (!cell || cell.dataset.path !== itemPath(item)) {
      cell?.remove();
      cell = makeCell(item, i, cols);
      $("sizer").append(cell);
    }
    const path = itemPath(item);
    cell.setAttribute("aria-selected", String(path === state.selected || state.chosen.has(path)));
  }
  for (const cell of [...$("sizer").children]) if (!keep.has(cell.dataset.index)) cell.remove();
}

function itemPath(item) {
  return item.path || (state.folder ? `${state.folder}/${item.name}` : item.name);
}

function makeCell(item, index, cols) {
  const cell = document.createElement("div");
  cell.className = "cell";
  cell.tabIndex = 0;
  cell.draggable = true;
  cell.setAttribute("role", "option");
  cell.dataset.index = String(index);
  cell.dataset.path = itemPath(item);
  cell.style.left = `${(index % cols) * (CELL + GAP)}px`;
  cell.style.top = `${Math.floor(index / cols) * (CELL + GAP)}px`;
  const img = document.createElement("img");
  img.alt = item.name;
  img.decoding = "async";
  img.src = thumbURL(cell.dataset.path);
  const name = document.createElement("span");
  name.textContent = item.name;
  cell.append(img, name);
  cell.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey) choose(cell.dataset.path);
    else select(cell.dataset.path);
  });
  cell.addEventListener("dblclick", () => view(index));
  cell.addEventListener("keydown", (event) => {
    if (event.key === "Enter") view(index);
  });
  return cell;
}

$("grid").addEventListener("scroll", render, { passive: true });
$("grid").addEventListener("keydown", (event) => {
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(), ArrowUp: -columns() }[event.key];
  if (!step || !$("viewer").hidden) return;
  event.preventDefault();
  const at = state.items.findIndex((item) => item && itemPath(item) === state.selected);
  const next = Math.min(state.items.length - 1, Math.max(0, at < 0 ? 0 : at + step));
  const item = state.items[next];
  if (!item) return;
  const row = Math.floor(next / columns()) * (CELL + GAP);
  const grid = $("grid");
  if (row < grid.scrollTop || row + CELL > grid.scrollTop + grid.clientHeight) grid.scrollTop = row;
  select(itemPath(item)).then(() => $("sizer").querySelector(`[data-index="${next}"]`)?.focus());
});
window.addEventListener("resize", layout);

$("sort").addEventListener("change", async () => {
  state.sort = $("sort").value;
  if (state.sort === "name") {
    openFolder(state.folder, { remember: false, selected: state.selected });
    return;
  }
  await allPages(Math.ceil(state.items.length / Math.max(1, state.pageSize)));
  sortItems();
  layout();
});

// -- search -----------------------------------------------------------------------------------

let debounce = 0;
$("search").addEventListener("input", () => {
  clearTimeout(debounce);
  debounce = setTimeout(async () => {
    const query = $("search").value.trim();
    if (!query) {
      openFolder(state.folder, { remember: false });
      return;
    }
    state.query = query;
    const found = await getJSON("search", { q: query, limit: 500, path: state.folder });
    if (state.query !== query) return;
    state.items = found.items;
    state.pageSize = found.items.length || 1;
    layout();
  }, 250);
});

// -- the inspector: tags, notes and stars, saved with If-Match --------------------------------

function choose(path) {
  if (state.chosen.size === 0 && state.selected) state.chosen.add(state.selected);
  if (state.chosen.has(path)) state.chosen.delete(path);
  else state.chosen.add(path);
  render();
  $("i-status").textContent = `${state.chosen.size} selected: a tag added now goes to each`;
}

async function select(path, { remember = true } = {}) {
  state.chosen.clear();
  state.selected = path;
  if (remember) writeLocation(true);
  render();
  if (!path) {
    $("inspector").hidden = true;
    return;
  }
  await showSelected();
}

// The inspector for what is selected, read afresh.
async function showSelected() {
  const path = state.selected;
  if (!path) return;
  const answer = await call("item", { path });
  const doc = await answer.json();
  if (state.selected !== path) return; // another image was picked while this one loaded
  showItem(path, answer.headers.get("etag"), doc);
}

function showItem(path, etag, doc) {
  state.item = { path, etag, doc };
  $("inspector").hidden = false;
  $("i-name").textContent = path.split("/").pop();
  const exif = doc.exif || {};
  $("i-exif").textContent = [
    exif.width && `${exif.width} × ${exif.height}`,
    exif.createdAt && `taken ${exif.createdAt}`,
  ].filter(Boolean).join(" · ");
  const tags = $("i-tags");
  tags.replaceChildren();
  for (const tag of doc.tags || []) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.textContent = tag;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove tag ${tag}`);
    remove.hidden = state.readonly;
    remove.addEventListener("click", () => save({ tags: doc.tags.filter((t) => t !== tag) }));
    chip.append(remove);
    tags.append(chip);
  }
  if (document.activeElement !== $("i-notes")) $("i-notes").value = doc.notes || "";
  $("i-notes").readOnly = state.readonly;
  const stars = $("i-stars");
  stars.replaceChildren();
  for (let n = 1; n <= 5; n++) {
    const star = document.createElement("button");
    star.type = "button";
    star.textContent = n <= (doc.star || 0) ? "★" : "☆";
    star.setAttribute("aria-label", `${n} star${n > 1 ? "s" : ""}`);
    star.disabled = state.readonly;
    star.addEventListener("click", () => save({ star: doc.star === n ? null : n }));
    stars.append(star);
  }
}

async function save(fields) {
  const current = state.item;
  if (!current) return;
  $("i-status").textContent = "saving…";
  try {
    const answer = await call("item", { path: current.path }, {
      method: "PUT",
      headers: { "Content-Type": "application/json", "If-Match": current.etag },
      body: JSON.stringify(fields),
    });
    const doc = await answer.json();
    if (state.item?.path === current.path) showItem(current.path, answer.headers.get("etag"), doc);
    $("i-status").textContent = "saved";
  } catch (error) {
    $("i-status").textContent = `not saved: ${error.message}`;
  }
}

async function tagChosen(tag) {
  const paths = [...state.chosen];
  let done = 0;
  for (const path of paths) {
    try {
      // Tags alone, without If-Match: the server merges them in (nobody's tag is lost).
      await call("item", { path }, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ tags: [tag] }),
      });
      done += 1;
    } catch (error) {
      toast(`${path.split("/").pop()}: ${error.message}`);
    }
  }
  $("i-status").textContent = `"${tag}" added to ${done} of ${paths.length}`;
  if (state.item && state.chosen.has(state.item.path)) select(state.item.path, { remember: false });
}

$("i-tag").addEventListener("keydown", (event) => {
  const tag = $("i-tag").value.trim();
  if (event.key !== "Enter" || !tag) return;
  if (state.chosen.size > 1) {
    $("i-tag").value = "";
    tagChosen(tag);
    return;
  }
  if (!state.item) return;
  $("i-tag").value = "";
  const tags = state.item.doc.tags || [];
  if (!tags.includes(tag)) save({ tags: [...tags, tag] });
});

$("i-notes").addEventListener("change", () => save({ notes: $("i-notes").value }));

// -- the viewer: the original, arrows step, 1:1 zoom; neighbours' thumbnails preloaded ----------

function view(index) {
  const item = state.items[index];
  if (item === undefined) return;
  state.viewing = index;
  const path = itemPath(item);
  $("viewer").hidden = false;
  $("v-img").src = url("file", { path });
  $("v-img").alt = item.name;
  $("v-name").textContent = item.name;
  for (const near of [index - 1, index + 1]) {
    const other = state.items[near];
    if (other !== undefined) new Image().src = thumbURL(itemPath(other));
  }
  select(path);
}

function closeViewer() {
  $("viewer").hidden = true;
  $("viewer").classList.remove("actual");
  state.viewing = -1;
}

$("v-prev").addEventListener("click", () => view(Math.max(0, state.viewing - 1)));
$("v-next").addEventListener("click", () => view(Math.min(state.items.length - 1, state.viewing + 1)));
$("v-close").addEventListener("click", closeViewer);
$("v-zoom").addEventListener("click", () => $("viewer").classList.toggle("actual"));
document.addEventListener("keydown", (event) => {
  if ($("viewer").hidden) return;
  if (event.key === "ArrowRight") view(Math.min(state.items.length - 1, state.viewing + 1));
  else if (event.key === "ArrowLeft") view(Math.max(0, state.viewing - 1));
  else if (event.key === "Escape") closeViewer();
});

// -- changes: upload, move by dragging onto a folder, trash with undo --------------------------

let toastTimer = 0;
function toast(text, undo) {
  $("t-text").textContent = text;
  $("t-undo").hidden = !undo;
  $("t-undo").onclick = undo ? () => { $("toast").hidden = true; undo(); } : null;
  $("toast").hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => ($("toast").hidden = true), undo ? 8000 : 4000);
}

async function moveImage(src, dest) {
  const answer = await call("move", {}, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ src, dest }),
  });
  return (await answer.json()).path;
}

async function refresh() {
  if (state.query) return;
  const keep = $("grid").scrollTop;
  await openFolder(state.folder, { remember: false, refreshing: true });
  $("grid").scrollTop = keep;
}

// Moving without a mouse: the folder typed in (created when it does not exist yet).
$("i-move").addEventListener("click", async () => {
  const path = state.item?.path;
  const dest = path && prompt("Move to the folder", `/${state.folder}`);
  if (!dest) return;
  try {
    await moveImage(path, dest);
    toast(`${path.split("/").pop()} moved to ${dest}`);
    state.selected = null;
    await refresh();
  } catch (error) {
    toast(`not moved: ${error.message}`);
  }
});

$("i-trash").addEventListener("click", async () => {
  const path = state.item?.path;
  if (!path) return;
  try {
    const trashed = await moveImage(path, "/_trash_");
    state.selected = null;
    await refresh();
    toast(`${path.split("/").pop()} moved to the trash`, async () => {
      await moveImage(trashed, path);
      state.selected = path;
      await refresh();
    });
  } catch (error) {
    toast(`not moved: ${error.message}`);
  }
});

function send(file) {
  // XMLHttpRequest, not fetch: it reports the upload's progress.
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("dest", state.folder);
    form.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", url("file"));
    request.setRequestHeader("X-Requested-With", "lenslet");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) {
        toast(`uploading ${file.name}: ${Math.round((100 * event.loaded) / event.total)}%`);
      }
    };
    request.onload = () => {
      if (request.status < 300) return resolve();
      let message = String(request.status);
      try {
        message = JSON.parse(request.responseText).error.message;
      } catch {}
      reject(new Error(message));
    };
    request.onerror = () => reject(new Error("the connection failed"));
    request.send(form);
  });
}

async function upload(files) {
  const failed = [];
  for (const file of files) {
    try {
      await send(file);
    } catch (error) {
      failed.push(`${file.name}: ${error.message}`);
    }
  }
  toast(failed.length ? failed.join("; ") : `${files.length} uploaded`);
  await refresh();
}

$("upload").addEventListener("change", () => upload([...$("upload").files]));
$("grid").addEventListener("dragover", (event) => {
  if (!event.dataTransfer?.types.includes("Files") || state.readonly) return;
  event.preventDefault();
  $("grid").classList.add("dropping");
});
$("grid").addEventListener("dragleave", () => $("grid").classList.remove("dropping"));
$("grid").addEventListener("drop", (event) => {
  $("grid").classList.remove("dropping");
  if (!event.dataTransfer?.files.length || state.readonly) return;
  event.preventDefault();
  upload([...event.dataTransfer.files]);
});

// A cell dragged onto a folder of the tree moves there.
$("sizer").addEventListener("dragstart", (event) => {
  const cell = event.target.closest?.(".cell");
  if (cell && !state.readonly) event.dataTransfer.setData("text/x-lenslet-path", cell.dataset.path);
});
$("tree").addEventListener("dragover", (event) => {
  const button = event.target.closest?.("button");
  if (!button || !event.dataTransfer.types.includes("text/x-lenslet-path")) return;
  event.preventDefault();
  button.classList.add("target");
});
$("tree").addEventListener("dragleave", (event) => event.target.closest?.("button")?.classList.remove("target"));
$("tree").addEventListener("drop", async (event) => {
  const button = event.target.closest?.("button");
  const src = event.dataTransfer.getData("text/x-lenslet-path");
  if (!button || !src) return;
  event.preventDefault();
  button.classList.remove("target");
  try {
    await moveImage(src, `/${button.dataset.path}`);
    toast(`${src.split("/").pop()} moved to /${button.dataset.path}`);
    await refresh();
  } catch (error) {
    toast(`not moved: ${error.message}`);
  }
});

// -- live: the server says which folders changed -------------------------------------------------

function listen() {
  const events = new EventSource(url("events"));
  events.addEventListener("folders", (event) => {
    const folders = JSON.parse(event.data).folders;
    if (folders.includes(state.folder)) refresh();
  });
}

// -- sign in (a server with a token): the token buys an HttpOnly session cookie ------------------

function signIn() {
  if (!$("login").open) $("login").showModal();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const answer = await fetch(url("session"), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("login-token").value }),
  });
  if (answer.ok) location.reload();
  else $("login-status").textContent = "That is not the token.";
});

// -- health: what the server knows is wrong -------------------------------------------------------

$("health-open").addEventListener("click", async () => {
  const body = $("health-body");
  body.textContent = "…";
  $("health").showModal();
  const health = await getJSON("health");
  const gallery = health.gallery || {};
  const counts = gallery.counts || {};
  const list = (title, rows) => {
    if (!rows?.length) return;
    const h = document.createElement("h3");
    h.textContent = `${title} (${rows.length})`;
    const ul = document.createElement("ul");
    for (const row of rows.slice(0, 200)) {
      const li = document.createElement("li");
      li.textContent = typeof row === "string" ? row : `${row.path}: ${row.reason || row.code || ""}`;
      ul.append(li);
    }
    body.append(h, ul);
  };
  body.replaceChildren();
  const summary = document.createElement("p");
  summary.textContent = health.ok ? "All is well." : "Something needs a look.";
  const figures = document.createElement("p");
  figures.className = "muted";
  figures.textContent = health.gallery
    ? Object.entries(counts).map(([k, v]) => `${k}: ${v}`).join(" · ")
    : "No health report yet: the root has not been indexed, or cannot be written.";
  const queue = document.createElement("p");
  queue.className = "muted";
  queue.textContent = health.jobs ? `queue: ${JSON.stringify(health.jobs.queued ?? health.jobs)}` : "";
  body.append(summary, figures, queue);
  list("Skipped files", gallery.skipped);
  list("Broken pointers", gallery.pointers?.broken);
  list("Orphan sidecars", gallery.orphanSidecars);
});

// -- start ---------------------------------------------------------------------------------------

getJSON("health").then((health) => {
  state.readonly = Boolean(health.readonly);
  document.body.classList.toggle("readonly", state.readonly);
}).catch(() => {});
listen();

const start = readLocation();
buildTree().then(() => unfold(state.folder));
openFolder(start.folder, { remember: false, selected: start.selected });
