[inputs: ["{mix,.formatter}.exs", "{lib,test,e2e,bench}/**/*.{ex,exs}"]]
