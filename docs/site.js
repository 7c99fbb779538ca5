// The search box in every page's header: Pagefind's UI over the index that `make -C docs`
// builds into pagefind/ (see the Makefile). Served from the file system, the browser
// refuses to fetch the index, and the box says nothing; `make run` serves the site.
window.addEventListener("DOMContentLoaded", () => {
    if (typeof PagefindUI === "undefined" || !document.getElementById("search")) {
        return;
    }
    new PagefindUI({
        element: "#search",
        showSubResults: true,
        showImages: false,
        resetStyles: false,
        translations: { placeholder: "Search" },
    });
});
