// Copy buttons for secrets shown once (templates/_copy.html). Without
// JavaScript the button stays hidden and the text stays selectable; where the
// browser refuses the clipboard, the text is selected and the page says how to
// copy it.
(function () {
  'use strict'

  function copy (button) {
    const value = document.getElementById(button.dataset.copy)
    const status = button.parentElement.querySelector('.copy-status')
    const label = button.textContent
    function said (text) {
      status.textContent = text
      window.setTimeout(function () { status.textContent = '' }, 2000)
    }
    function selectIt () {
      const range = document.createRange()
      range.selectNodeContents(value)
      const selection = window.getSelection()
      selection.removeAllRanges()
      selection.addRange(range)
      said(button.dataset.failed)
    }
    if (!navigator.clipboard) { selectIt(); return }
    navigator.clipboard.writeText(value.textContent).then(function () {
      button.textContent = button.dataset.copied
      said(button.dataset.copied)
      window.setTimeout(function () { button.textContent = label }, 2000)
    }, selectIt)
  }

  document.querySelectorAll('[data-copy]').forEach(function (button) {
    if (button.dataset.copyReady) { return }
    button.dataset.copyReady = '1'
    button.hidden = false
    button.addEventListener('click', function () { copy(button) })
  })
})()
