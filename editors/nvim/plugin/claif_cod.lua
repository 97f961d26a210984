-- claif-cod: ask Codex (through the claif-codd daemon) about the current buffer. Neovim >= 0.7.
if vim.g.loaded_claif_cod then
  return
end
vim.g.loaded_claif_cod = true

vim.api.nvim_create_user_command("ClaifAsk", function(opts)
  local claif = require("claif_cod")
  if opts.args == "" then
    vim.ui.input({ prompt = "Ask Codex: " }, function(prompt)
      if prompt and prompt ~= "" then
        claif.ask(prompt, opts)
      end
    end)
    return
  end
  claif.ask(opts.args, opts)
end, { nargs = "*", range = true, desc = "Ask Codex about the buffer (or the lines in range)" })

vim.api.nvim_create_user_command("ClaifInterrupt", function()
  require("claif_cod").interrupt()
end, { nargs = 0, desc = "Interrupt the running Codex turn of this project's session" })

vim.api.nvim_create_user_command("ClaifReset", function()
  require("claif_cod").reset()
end, { nargs = 0, desc = "Forget this project's Codex session; the next :ClaifAsk starts a new one" })

vim.api.nvim_create_autocmd("VimLeavePre", {
  group = vim.api.nvim_create_augroup("claif_cod", { clear = true }),
  callback = function()
    if package.loaded["claif_cod"] then
      require("claif_cod").disconnect()
    end
  end,
})
