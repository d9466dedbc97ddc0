//! The layering of `src/`: every file's `crate::`/`super::` imports form a graph with no cycle, and
//! no module imports one of a layer above its own. The protocol core (`scim`) also names no
//! pingora, rusqlite or tokio item. Test-only code (`#[cfg(test)]`) is left out; a `pub use`
//! re-export is a facade, not a dependency: paths through it are followed to the defining file.

// Test code: a failed unwrap, expect or panic is a failed test (the lints in Cargo.toml keep
// them out of the library).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// The layers, bottom first. A module may import its own layer and the ones below.
const LAYERS: &[&[&str]] = &[
    &["scim"],
    &["auth", "forwarded", "headers", "store", "telemetry"],
    &["service", "brake"],
    &["backend"],
    &["guard"],
    &["team_admin"],
    &["config"],
    &["parts"],
    &["proxy"],
    &["gateway"],
    &["demo"],
    &["commands"],
];

/// Crates the protocol core must not name.
const NOT_IN_CORE: &[&str] = &["pingora", "rusqlite", "tokio"];

#[test]
fn src_has_no_import_cycle_and_no_upward_import() {
    let graph = Graph::of(Path::new(env!("CARGO_MANIFEST_DIR")).join("src").as_path());
    let mut problems = Vec::new();
    problems.extend(graph.upward_edges());
    problems.extend(graph.cycles());
    problems.extend(graph.impure_core());
    assert!(
        problems.is_empty(),
        "layering broken:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_check_sees_cycles_and_upward_edges() {
    let mut graph = Graph::default();
    for m in ["scim::a", "scim::b", "backend::c"] {
        graph.edges.insert(m.into(), BTreeSet::new());
    }
    graph.add("scim::a", "scim::b");
    graph.add("scim::b", "scim::a");
    graph.add("scim::b", "backend::c");
    assert_eq!(graph.cycles().len(), 1);
    assert_eq!(graph.upward_edges().len(), 1);
}

/// Module path (`scim::filter::parser`) of every file, and its parsed contents.
struct Source {
    module: String,
    file: syn::File,
}

#[derive(Default)]
struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
    externs: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn of(src: &Path) -> Graph {
        let sources = read_sources(src);
        let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
        let test_only: BTreeSet<String> = sources.iter().flat_map(test_only_children).collect();
        let reexports: HashMap<String, HashMap<String, Vec<String>>> = sources
            .iter()
            .map(|s| (s.module.clone(), reexports_of(s)))
            .collect();
        let mut graph = Graph::default();
        for source in sources.iter().filter(|s| !is_under(&s.module, &test_only)) {
            let mut paths = PathCollector::new(&source.module, children_of(source));
            paths.visit_file(&source.file);
            let from = source.module.clone();
            graph.edges.entry(from.clone()).or_default();
            for path in paths.crate_paths {
                if let Some(to) = resolve(&path, &modules, &reexports) {
                    if to != from && !is_under(&to, &test_only) {
                        graph.add(&from, &to);
                    }
                }
            }
            graph.externs.insert(from, paths.first_segments);
        }
        graph
    }

    fn add(&mut self, from: &str, to: &str) {
        self.edges
            .entry(from.to_string())
            .or_default()
            .insert(to.to_string());
    }

    fn upward_edges(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (from, tos) in &self.edges {
            for to in tos {
                match (layer(from), layer(to)) {
                    (Some(a), Some(b)) if b > a => out.push(format!("upward: {from} -> {to}")),
                    (None, _) => out.push(format!("{from} is in no layer (tests/layers.rs)")),
                    (_, None) => out.push(format!("{to} is in no layer (tests/layers.rs)")),
                    _ => {}
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// One message per strongly connected set of files (Tarjan).
    fn cycles(&self) -> Vec<String> {
        let nodes: Vec<&String> = self.edges.keys().collect();
        let index_of: HashMap<&String, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let succ: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                self.edges[*n]
                    .iter()
                    .filter_map(|t| index_of.get(t).copied())
                    .collect()
            })
            .collect();
        let mut tarjan = Tarjan::new(nodes.len());
        for v in 0..nodes.len() {
            if tarjan.index[v].is_none() {
                tarjan.connect(v, &succ);
            }
        }
        tarjan
            .components
            .iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let nodes = &nodes;
                let succ = &succ;
                let edges: Vec<String> = c
                    .iter()
                    .flat_map(|&i| {
                        succ[i]
                            .iter()
                            .filter(|j| c.contains(j))
                            .map(move |&j| format!("{} -> {}", nodes[i], nodes[j]))
                    })
                    .collect();
                format!("cycle: {}", edges.join(", "))
            })
            .collect()
    }

    fn impure_core(&self) -> Vec<String> {
        self.externs
            .iter()
            .filter(|(m, _)| layer(m) == Some(0))
            .flat_map(|(m, names)| {
                names
                    .iter()
                    .filter(|n| NOT_IN_CORE.contains(&n.as_str()))
                    .map(move |n| format!("the protocol core's {m} uses {n}"))
            })
            .collect()
    }
}

struct Tarjan {
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan {
    fn new(n: usize) -> Self {
        Tarjan {
            index: vec![None; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            next: 0,
            components: Vec::new(),
        }
    }

    fn connect(&mut self, v: usize, succ: &[Vec<usize>]) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &succ[v] {
            match self.index[w] {
                None => {
                    self.connect(w, succ);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

fn layer(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS.iter().position(|l| l.contains(&top))
}

fn is_under(module: &str, set: &BTreeSet<String>) -> bool {
    set.iter()
        .any(|t| module == t || module.starts_with(&format!("{t}::")))
}

fn read_sources(src: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    collect_files(src, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(src).ok()?.with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if matches!(parts.as_slice(), [p] if p == "lib" || p == "main") {
                return None;
            }
            let text = std::fs::read_to_string(&path).ok()?;
            let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Some(Source {
                module: parts.join("::"),
                file,
            })
        })
        .collect()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Child modules declared `#[cfg(test)] mod x;` in their own files.
fn test_only_children(source: &Source) -> Vec<String> {
    source
        .file
        .items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(m) if m.content.is_none() && is_test_only(&m.attrs) => {
                Some(join(&source.module, &m.ident.to_string()))
            }
            _ => None,
        })
        .collect()
}

fn children_of(source: &Source) -> BTreeSet<String> {
    source
        .file
        .items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(m) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect()
}

/// `pub use` items of a file: name -> absolute path of what it names.
fn reexports_of(source: &Source) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    for item in &source.file.items {
        if let syn::Item::Use(u) = item {
            if matches!(u.vis, syn::Visibility::Inherited) || is_test_only(&u.attrs) {
                continue;
            }
            let children = children_of(source);
            let mut leaves = Vec::new();
            use_leaves(&u.tree, Vec::new(), &mut leaves);
            for (path, name) in leaves {
                if let Some(abs) = absolute(&source.module, &children, &path) {
                    out.insert(name, abs);
                }
            }
        }
    }
    out
}

/// The paths of a use tree, each with the name it brings into scope.
fn use_leaves(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut next = prefix;
            next.push(p.ident.to_string());
            use_leaves(&p.tree, next, out);
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix;
            if name != "self" {
                path.push(name.clone());
            }
            let bound = path.last().cloned().unwrap_or(name);
            out.push((path, bound));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix;
            path.push(r.ident.to_string());
            out.push((path, r.rename.to_string()));
        }
        syn::UseTree::Glob(_) => out.push((prefix, "*".into())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_leaves(t, prefix.clone(), out);
            }
        }
    }
}

/// A path as written in `module` made absolute (from the crate root), if it names this crate.
fn absolute(module: &str, children: &BTreeSet<String>, path: &[String]) -> Option<Vec<String>> {
    let here: Vec<String> = module.split("::").map(str::to_string).collect();
    let first = path.first()?;
    match first.as_str() {
        "crate" => Some(path[1..].to_vec()),
        "self" => Some([here.clone(), path[1..].to_vec()].concat()),
        "super" => {
            let mut base = here;
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            Some([base, rest.to_vec()].concat())
        }
        name if children.contains(name) => Some([here, path.to_vec()].concat()),
        _ => None,
    }
}

/// The file an absolute path lands in, following `pub use` re-exports.
fn resolve(
    path: &[String],
    modules: &BTreeSet<String>,
    reexports: &HashMap<String, HashMap<String, Vec<String>>>,
) -> Option<String> {
    let mut path = path.to_vec();
    for _ in 0..8 {
        let (module, rest) = (1..=path.len()).rev().find_map(|n| {
            let m = path[..n].join("::");
            modules.contains(&m).then(|| (m, path[n..].to_vec()))
        })?;
        let Some(target) = rest
            .first()
            .and_then(|name| reexports.get(&module)?.get(name))
        else {
            return Some(module);
        };
        path = [target.clone(), rest[1..].to_vec()].concat();
    }
    None
}

fn join(module: &str, child: &str) -> String {
    if module.is_empty() {
        child.to_string()
    } else {
        format!("{module}::{child}")
    }
}

/// Collects every path of a file that names this crate, made absolute, and the first segment
/// of every path (to spot external crates).
struct PathCollector {
    module: String,
    children: BTreeSet<String>,
    crate_paths: Vec<Vec<String>>,
    first_segments: BTreeSet<String>,
}

impl PathCollector {
    fn new(module: &str, children: BTreeSet<String>) -> Self {
        PathCollector {
            module: module.to_string(),
            children,
            crate_paths: Vec::new(),
            first_segments: BTreeSet::new(),
        }
    }

    fn note(&mut self, path: Vec<String>) {
        if let Some(first) = path.first() {
            self.first_segments.insert(first.clone());
        }
        if let Some(abs) = absolute(&self.module, &self.children, &path) {
            self.crate_paths.push(abs);
        }
    }
}

impl<'ast> Visit<'ast> for PathCollector {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Const(c) => &c.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        // A `pub use` is a re-export, followed by `resolve` rather than counted.
        if !matches!(u.vis, syn::Visibility::Inherited) {
            return;
        }
        let mut leaves = Vec::new();
        use_leaves(&u.tree, Vec::new(), &mut leaves);
        for (path, _) in leaves {
            self.note(path);
        }
    }

    /// `pub(super)` names who may see an item, not a dependency.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.note(segments);
        syn::visit::visit_path(self, p);
    }
}
