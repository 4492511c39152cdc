// Loaded into the page like A1111 extension scripts: runs after the UI exists.
onUiLoaded(function () {
    var tab = gradioApp().querySelector("#tab_hello");
    if (tab) tab.dataset.helloLoaded = "yes";
});
