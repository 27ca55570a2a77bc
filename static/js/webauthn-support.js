// Security keys and passkeys only where they can work, and a clear word when
// they do not (never a dead button).
//
// A page marks its key buttons with data-webauthn-button and has one
// [data-webauthn-note] element (role="alert", hidden) whose data-* attributes
// carry the page's translated messages. WebAuthn needs a secure context and a
// host name as relying party: an IP address (http://127.0.0.1:8000) is refused
// by the browser, so there the buttons are disabled and the note says why.
// When the browser refuses or the user cancels, allauth's webauthn.js fires
// "allauth.error"; the note then says what happened.
(function () {
  'use strict'

  function hostIsAddress (host) {
    return /^[0-9.]+$/.test(host) || host.indexOf(':') !== -1 || host.charAt(0) === '['
  }

  function usable () {
    return Boolean(window.isSecureContext && window.PublicKeyCredential) &&
      !hostIsAddress(window.location.hostname)
  }

  function say (note, text) {
    note.textContent = text
    note.classList.add('alert')
    note.hidden = false
  }

  function messageFor (note, exception) {
    const name = exception && exception.name
    if (name === 'NotAllowedError' || name === 'AbortError') return note.dataset.cancelled
    if (name === 'SecurityError' || name === 'NotSupportedError') return note.dataset.unsupported
    if (name === 'InvalidStateError') return note.dataset.known || note.dataset.failed
    return note.dataset.failed
  }

  function start () {
    const note = document.querySelector('[data-webauthn-note]')
    if (!note) return
    const buttons = document.querySelectorAll('[data-webauthn-button]')
    if (!usable()) {
      buttons.forEach(function (button) {
        button.disabled = true
        button.setAttribute('aria-describedby', note.id)
      })
      say(note, note.dataset.unsupported)
      return
    }
    document.addEventListener('allauth.error', function (event) {
      event.preventDefault()
      say(note, messageFor(note, event.detail && event.detail.exception))
    })
    buttons.forEach(function (button) {
      button.addEventListener('click', function () { note.hidden = true })
    })
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start)
  } else {
    start()
  }
})()
